#pragma once

namespace pyshim {

// True when invoked as "pyshim" (tool mode); any other name is the launcher.
bool is_tool_invocation(int argc, char** argv);

// Launcher mode: never returns on success (it becomes the interpreter).
int launcher_main(int argc, char** argv, char** envp);

// Tool mode: the management CLI.
int tool_main(int argc, char** argv);

}  // namespace pyshim
