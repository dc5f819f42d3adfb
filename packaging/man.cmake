# Writes the man pages from the built CLI's own --help, so the two cannot
# drift: pyshim.1.gz, and pyshim-COMMAND.1.gz for each subcommand.
# help2man (Debian package help2man) does the formatting; the list of
# subcommands and their one-line summaries come from pyshim-docgen, which
# reads the same CLI11 definition that prints --help.
#
#   cmake -DPYSHIM=bin -DDOCGEN=bin -DHELP2MAN=bin -DGZIP=bin -DVERSION=x.y.z -DOUT=dir
#         -P packaging/man.cmake

foreach(var PYSHIM DOCGEN HELP2MAN GZIP VERSION OUT)
  if(NOT ${var})
    message(FATAL_ERROR "man.cmake: -D${var}= is required")
  endif()
endforeach()

execute_process(COMMAND ${DOCGEN} commands OUTPUT_VARIABLE commands
                COMMAND_ERROR_IS_FATAL ANY)
string(REGEX REPLACE "\n$" "" commands "${commands}")
string(REPLACE "\n" ";" commands "${commands}")

file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})

set(pages "")
foreach(name IN LISTS commands)
  if(name STREQUAL "pyshim")
    list(APPEND pages pyshim)
  else()
    list(APPEND pages pyshim-${name})
  endif()
endforeach()

# help2man joins the indented lines of a paragraph; the examples in the help
# footers are one command per line, so keep them as written. A footer that
# says "Example:" (one) gets the EXAMPLES section too.
function(keep_examples_verbatim file)
  file(READ ${file} text)
  string(REPLACE ".SS \"Example:\"\n" ".SH EXAMPLES\n" text "${text}")
  string(FIND "${text}" ".SH EXAMPLES\n" at)
  if(at EQUAL -1)
    return()
  endif()
  string(SUBSTRING "${text}" 0 ${at} head)
  string(SUBSTRING "${text}" ${at} -1 rest)
  # The section ends at the first plain paragraph (the footer's prose) or the
  # next section.
  string(LENGTH "${rest}" end)
  foreach(marker "\n.PP\n" "\n.SH ")
    string(FIND "${rest}" "${marker}" found)
    if(NOT found EQUAL -1 AND found LESS end)
      set(end ${found})
    endif()
  endforeach()
  string(SUBSTRING "${rest}" 0 ${end} block)
  string(SUBSTRING "${rest}" ${end} -1 tail)
  string(REGEX REPLACE "\n$" "" block "${block}")
  string(REPLACE ".IP\n" ".IP\n.nf\n" block "${block}")
  file(WRITE ${file} "${head}${block}\n.fi${tail}")
endfunction()

foreach(name IN LISTS commands)
  execute_process(COMMAND ${DOCGEN} summary ${name} OUTPUT_VARIABLE summary
                  OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
  if(name STREQUAL "pyshim")
    set(page pyshim)
    set(help_option "--help")
    set(see_also "")
    foreach(other IN LISTS pages)
      if(NOT other STREQUAL "pyshim")
        list(APPEND see_also ".BR ${other} (1)")
      endif()
    endforeach()
  else()
    set(page pyshim-${name})
    set(help_option "${name} --help")
    set(see_also ".BR pyshim (1)")
  endif()
  list(JOIN see_also ",\n" see_also)
  set(include ${OUT}/${page}.h2m)
  file(WRITE ${include}
       "[SEE ALSO]\n${see_also}\n.PP\n"
       "The full reference (pyshim.toml, exit codes, the JSON documents) is in\n"
       ".I /usr/share/doc/pyshim/README.md.gz\n")
  # The page name comes from the version string ("pyshim-install 0.2.0").
  execute_process(
    COMMAND ${HELP2MAN} --no-info --section=1 "--name=${summary}"
            "--version-string=${page} ${VERSION}" "--help-option=${help_option}"
            "--include=${include}" --output=${OUT}/${page}.1 ${PYSHIM}
    COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE ${include})
  keep_examples_verbatim(${OUT}/${page}.1)
  # -n: no name or time stamp in the .gz, so the build is reproducible.
  execute_process(COMMAND ${GZIP} -9nf ${OUT}/${page}.1 COMMAND_ERROR_IS_FATAL ANY)
endforeach()
