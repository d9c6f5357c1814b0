# Concatenates INPUTS into a C++ source file that defines `const char* const SYMBOL`.
set(content "")
foreach(f ${INPUTS})
  file(READ ${f} text)
  string(APPEND content "${text}\n")
endforeach()
file(WRITE ${OUT} "// Generated from data/profiles by cmake/embed.cmake. Do not edit.\n"
  "namespace eta::engine { extern const char* const ${SYMBOL}; const char* const ${SYMBOL} = R\"ETA_EMBED(${content})ETA_EMBED\"; }\n")
