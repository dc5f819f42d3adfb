// pyshim-docgen: a build-time helper (not installed) that reads the CLI's
// own definition (setup_app, the same CLI11 tree that answers --help) and
// writes what the package needs to agree with it:
//
//   pyshim-docgen commands              "pyshim", then each subcommand, a line each
//   pyshim-docgen summary NAME          NAME's one-line summary (for its man page)
//   pyshim-docgen bash-completion FILE  the bash completion script
//
// Generated rather than written by hand so that a new subcommand or option
// reaches the man pages and the completion without anyone remembering to.
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "pyshim/cli.hpp"

namespace {

// The first line of a description, as a man page NAME line wants it:
// "pyshim: a static launcher ...interpreter." -> "a static launcher ...interpreter".
std::string summary(const CLI::App& app) {
  std::string text = app.get_description();
  text = text.substr(0, text.find('\n'));
  std::string prefix = app.get_name() + ": ";
  if (text.starts_with(prefix)) text.erase(0, prefix.size());
  if (text.ends_with('.')) text.pop_back();
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::vector<const CLI::App*> subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* sub) { return !sub->get_name().empty(); });
}

// Long names, and the short one of an option that has no long name.
std::string option_words(const CLI::App& app) {
  std::vector<std::string> words;
  for (const CLI::Option* option : app.get_options()) {
    for (const std::string& name : option->get_lnames()) words.push_back("--" + name);
    if (option->get_lnames().empty()) {
      for (const std::string& name : option->get_snames()) words.push_back("-" + name);
    }
  }
  return fmt::format("{}", fmt::join(words, " "));
}

// Words are completed from the lists below; option values and positionals
// (paths, almost all) fall through to bash's file completion (-o default).
std::string bash_completion(const CLI::App& app) {
  std::string names;
  std::string cases;
  for (const CLI::App* sub : subcommands(app)) {
    names += (names.empty() ? "" : " ") + sub->get_name();
    cases += fmt::format("        {}) [[ $cur == -* ]] && words=\"{}\" ;;\n", sub->get_name(),
                         option_words(*sub));
  }
  return fmt::format(
      "# bash completion for {0}                                   -*- shell-script -*-\n"
      "# Generated at build time from {0}'s own command-line definition (the one\n"
      "# that prints --help) by packaging/docgen.cpp: do not edit.\n"
      "\n"
      "_{0}() {{\n"
      "    local cur=${{COMP_WORDS[COMP_CWORD]}} command=\"\" words=\"\" i\n"
      "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "        if [[ ${{COMP_WORDS[i]}} != -* ]]; then\n"
      "            command=${{COMP_WORDS[i]}}\n"
      "            break\n"
      "        fi\n"
      "    done\n"
      "    case $command in\n"
      "        \"\") if [[ $cur == -* ]]; then words=\"{1}\"; else words=\"{2}\"; fi ;;\n"
      "{3}"
      "    esac\n"
      "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
      "}}\n"
      "complete -o default -F _{0} {0}\n",
      app.get_name(), option_words(app), names, cases);
}

int usage() {
  std::fputs("usage: pyshim-docgen commands | summary NAME | bash-completion FILE\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app;
  pyshim::cli::Context context;
  pyshim::cli::setup_app(app, context);
  std::vector<std::string_view> args(argv + 1, argv + argc);

  if (args.size() == 1 && args[0] == "commands") {
    std::cout << app.get_name() << '\n';
    for (const CLI::App* sub : subcommands(app)) std::cout << sub->get_name() << '\n';
    return std::cout.flush() ? 0 : 1;
  }
  if (args.size() == 2 && args[0] == "summary") {
    const CLI::App* named = args[1] == app.get_name() ? &app : nullptr;
    for (const CLI::App* sub : subcommands(app)) {
      if (sub->get_name() == args[1]) named = sub;
    }
    if (named == nullptr) return usage();
    std::cout << summary(*named) << '\n';
    return std::cout.flush() ? 0 : 1;
  }
  if (args.size() == 2 && args[0] == "bash-completion") {
    std::ofstream out{std::string(args[1])};
    out << bash_completion(app);
    out.close();
    if (!out) {
      std::cerr << "pyshim-docgen: cannot write " << args[1] << '\n';
      return 1;
    }
    return 0;
  }
  return usage();
}
