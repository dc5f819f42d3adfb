#include "pyshim/stamp.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace pyshim {
namespace {

Stamp sample() {
  Stamp s;
  s.source = "/venv/pyshim.toml";
  s.identity = {1, 2, 3, 4, 5};
  s.restore_library = "/venv/lib/pyshim/libpyshim-restore.so";
  s.config.file = s.source;
  s.config.interpreter = {"/usr/bin/python3.11", {1, 15}};
  s.config.preload = {{"/usr/lib/libjemalloc.so.2", {2, 12}}};
  s.config.library_path = {{"/venv/share/venv/dynlib", {3, 17}}, {"/opt/cuda/lib64", {3, 40}}};
  s.config.library_path_position = Position::kAppend;
  s.config.env = {{"MALLOC_CONF", "background_thread:true", {6, 1}}, {"EMPTY", "", {7, 1}}};
  s.config.startup = {{"loader:load", {9, 12}}};
  s.config.python_path = {{"/venv/src", {10, 9}}};
  return s;
}

TEST(Stamp, RoundTripKeepsEveryValueAndOrigin) {
  auto area = encode_stamp(sample(), "0.2.0");
  ASSERT_TRUE(area.ok());
  EXPECT_EQ(area->size(), kStampCapacity);
  EXPECT_EQ(stamp_version(*area), "0.2.0");
  auto decoded = decode_stamp(*area);
  ASSERT_TRUE(decoded.ok()) << format_error(decoded.error());
  ASSERT_TRUE(decoded->has_value());
  const Stamp& s = **decoded;
  Stamp want = sample();
  EXPECT_EQ(s.source, want.source);
  EXPECT_EQ(s.identity, want.identity);
  EXPECT_EQ(s.restore_library, want.restore_library);
  EXPECT_EQ(s.config.file, "/venv/pyshim.toml");
  EXPECT_EQ(s.config.dir, "/venv");
  EXPECT_EQ(s.config.interpreter.value, "/usr/bin/python3.11");
  EXPECT_EQ(s.config.interpreter.origin.column, 15u);
  ASSERT_EQ(s.config.library_path.size(), 2u);
  EXPECT_EQ(s.config.library_path[1].value, "/opt/cuda/lib64");
  EXPECT_EQ(s.config.library_path_position, Position::kAppend);
  ASSERT_EQ(s.config.env.size(), 2u);
  EXPECT_EQ(s.config.env[0].value, "background_thread:true");
  EXPECT_EQ(s.config.env[1].value, "");
  EXPECT_EQ(s.config.startup[0].value, "loader:load");
  EXPECT_EQ(s.config.python_path[0].value, "/venv/src");
}

TEST(Stamp, EmptyAreaIsUnstampedNotAnError) {
  std::string area = empty_stamp_area("0.2.0");
  auto decoded = decode_stamp(area);
  ASSERT_TRUE(decoded.ok());
  EXPECT_FALSE(decoded->has_value());
  EXPECT_EQ(stamp_version(area), "0.2.0");
}

TEST(Stamp, EveryFlippedByteIsDetectedOrHarmless) {
  std::string area = *encode_stamp(sample(), "0.2.0");
  auto length = [&] {
    StampHeader h;
    std::memcpy(&h, area.data(), sizeof h);
    return h.length;
  }();
  for (std::size_t i = 0; i < sizeof(StampHeader) + length; ++i) {
    std::string damaged = area;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
    auto decoded = decode_stamp(damaged);
    if (i >= 16 && i < 32) {  // the version field is not covered by the checksum
      EXPECT_TRUE(decoded.ok());
    } else {
      EXPECT_FALSE(decoded.ok()) << "byte " << i;
    }
  }
}

TEST(Stamp, TruncatedAreasAreRefused) {
  std::string area = *encode_stamp(sample(), "0.2.0");
  for (std::size_t n : {0, 8, 39, 60, 200}) {
    EXPECT_FALSE(decode_stamp(std::string_view(area).substr(0, n)).ok()) << n;
  }
}

// The heap-free view (the launcher's hot path) decides exactly as
// decode_stamp: the same bytes are stamped, unstamped or damaged for both,
// and a view holds the same values.
TEST(Stamp, TheViewAgreesWithDecodeOnEveryByteFlipped) {
  std::string area = *encode_stamp(sample(), "0.2.0");
  StampView view;
  ASSERT_EQ(view_stamp(area, view, nullptr), StampState::kStamped);
  Stamp want = sample();
  EXPECT_EQ(view.source, want.source);
  EXPECT_EQ(view.identity, want.identity);
  EXPECT_EQ(view.restore_library, want.restore_library);
  EXPECT_EQ(view.config.file, want.source);
  EXPECT_EQ(view.config.interpreter, want.config.interpreter.value);
  EXPECT_EQ(view.config.library_path_position, Position::kAppend);
  std::vector<std::string> dirs;
  for (std::string_view dir : view.config.library_path) dirs.emplace_back(dir);
  EXPECT_EQ(dirs, (std::vector<std::string>{"/venv/share/venv/dynlib", "/opt/cuda/lib64"}));
  std::vector<std::string> env;
  for (EnvList::Entry var : view.config.env)
    env.push_back(std::string(var.name) + "=" + std::string(var.value));
  EXPECT_EQ(env, (std::vector<std::string>{"MALLOC_CONF=background_thread:true", "EMPTY="}));
  // Strings are NUL-terminated in place: the launcher passes them to syscalls.
  EXPECT_EQ(view.config.interpreter.data()[view.config.interpreter.size()], '\0');
  EXPECT_EQ(view.source.data()[view.source.size()], '\0');

  EXPECT_EQ(view_stamp(empty_stamp_area("0.2.0"), view, nullptr), StampState::kUnstamped);
  for (std::size_t i = 0; i < 400; ++i) {
    for (int bit : {0x01, 0x80}) {
      std::string flipped = area;
      flipped[i] = static_cast<char>(flipped[i] ^ bit);
      auto decoded = decode_stamp(flipped);
      const char* why = nullptr;
      StampState state = view_stamp(flipped, view, &why);
      if (!decoded.ok()) {
        EXPECT_EQ(state, StampState::kDamaged) << i;
        EXPECT_NE(decoded.error().message.find(why), std::string::npos) << i;
      } else {
        EXPECT_EQ(state, decoded->has_value() ? StampState::kStamped : StampState::kUnstamped) << i;
      }
    }
  }
  for (std::size_t n : {0, 8, 39, 60, 200}) {
    EXPECT_EQ(view_stamp(std::string_view(area).substr(0, n), view, nullptr), StampState::kDamaged);
  }
}

TEST(Stamp, AConfigThatDoesNotFitIsRefusedWithItsSize) {
  Stamp s = sample();
  for (int i = 0; i < 1000; ++i) s.config.library_path.push_back({std::string(40, 'd'), {}});
  auto area = encode_stamp(s, "0.2.0");
  ASSERT_FALSE(area.ok());
  EXPECT_NE(area.error().message.find("a launcher holds at most"), std::string::npos);
}

}  // namespace
}  // namespace pyshim
