# pyshim_embed(<name> <source> <header>): a header with the file's text as a
# raw string constant pyshim::embedded::<name>, regenerated when it changes.
function(pyshim_embed name source header)
  set(EMBED_NAME ${name})
  set(EMBED_SOURCE ${source})
  file(READ ${source} EMBED_TEXT)
  configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/embed.hpp.in ${header} @ONLY)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${source})
endfunction()
