# Warnings on for every build; errors only where we choose (PYSHIM_WERROR,
# on in the dev/ci/asan presets that scripts/dev.sh and CI use): a user's
# newer compiler with a new warning must still build a release.
option(PYSHIM_WERROR "Treat warnings as errors" OFF)
function(pyshim_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion)
  if(PYSHIM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
