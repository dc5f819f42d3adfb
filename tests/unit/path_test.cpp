// The one path module (src/core/path.cpp): lexical helpers every layer uses.
#include "pyshim/path.hpp"

#include <gtest/gtest.h>

namespace pyshim {
namespace {

TEST(Path, JoinAddsOneSlash) {
  EXPECT_EQ(join("/a", "b"), "/a/b");
  EXPECT_EQ(join("/a/", "b"), "/a/b");
  EXPECT_EQ(join("/", "b"), "/b");
  EXPECT_EQ(join("", "b"), "b") << "relative to the folder, as plans name entries";
  EXPECT_EQ(join("a", "b/c"), "a/b/c");
}

TEST(Path, LexicallyNormal) {
  EXPECT_EQ(lexically_normal("/a/./b//../c/"), "/a/c");
  EXPECT_EQ(lexically_normal("/../a"), "/a");
  EXPECT_EQ(lexically_normal("/"), "/");
  EXPECT_EQ(lexically_normal("a/../../b"), "../b");
  EXPECT_EQ(lexically_normal(""), ".");
  EXPECT_EQ(lexically_normal("venv/../venv/bin/python"), "venv/bin/python");
}

TEST(Path, DirnameAndBasename) {
  EXPECT_EQ(dirname("/a/b"), "/a");
  EXPECT_EQ(dirname("/a/b/"), "/a");
  EXPECT_EQ(dirname("b"), ".");
  EXPECT_EQ(dirname("/b"), "/");
  EXPECT_EQ(dirname("/"), "/");
  EXPECT_EQ(basename("/a/b"), "b");
  EXPECT_EQ(basename("b"), "b");
}

}  // namespace
}  // namespace pyshim
