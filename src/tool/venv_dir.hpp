// Every change tool mode makes to a venv goes through the OS layer's Dir
// (src/os/include/pyshim/dir.hpp: directory fds, no link followed, atomic
// and durable writes, the dry run); this header names it for the tool's
// sources. Its log lines go to the tool's logger (log.cpp).
#pragma once

#include "pyshim/dir.hpp"
