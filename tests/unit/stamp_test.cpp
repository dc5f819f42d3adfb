#include "pyshim/stamp.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <vector>

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
  s.config.env = {{"MALLOC_CONF", "background_thread:true", {6, 1}},
                  {"EMPTY", "", {7, 1}},
                  {"PYTHONPATH", "/build/python", {8, 16}, EnvMode::kPrepend},
                  {"CLASSPATH", "/x.jar", {9, 15}, EnvMode::kAppend}};
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
  ASSERT_EQ(s.config.env.size(), 4u);
  EXPECT_EQ(s.config.env[0].value, "background_thread:true");
  EXPECT_EQ(s.config.env[0].mode, EnvMode::kSet);
  EXPECT_EQ(s.config.env[1].value, "");
  EXPECT_EQ(s.config.env[2].mode, EnvMode::kPrepend);
  EXPECT_EQ(s.config.env[2].value, "/build/python");
  EXPECT_EQ(s.config.env[2].origin.column, 16u);
  EXPECT_EQ(s.config.env[3].mode, EnvMode::kAppend);
  EXPECT_EQ(s.config.env[3].name, "CLASSPATH");
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
  EXPECT_EQ(env, (std::vector<std::string>{"MALLOC_CONF=background_thread:true", "EMPTY=",
                                           "PYTHONPATH=/build/python", "CLASSPATH=/x.jar"}));
  // Strings are NUL-terminated in place: the launcher passes them to syscalls.
  EXPECT_EQ(view.config.interpreter.data()[view.config.interpreter.size()], '\0');
  EXPECT_EQ(view.source.data()[view.source.size()], '\0');

  EXPECT_EQ(view_stamp(empty_stamp_area("0.2.0"), view, nullptr), StampState::kUnstamped);
  for (std::size_t i = 0; i < 480; ++i) {
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

TEST(Stamp, TheViewReadsEachEnvForm) {
  auto area = encode_stamp(sample(), "0.2.0");
  ASSERT_TRUE(area.ok());
  StampView view;
  ASSERT_EQ(view_stamp(*area, view, nullptr), StampState::kStamped);
  std::vector<EnvMode> modes;
  for (auto it = view.config.env.begin(); it != view.config.env.end(); ++it) {
    modes.push_back((*it).mode);
  }
  EXPECT_EQ(modes, (std::vector<EnvMode>{EnvMode::kSet, EnvMode::kSet, EnvMode::kPrepend,
                                         EnvMode::kAppend}));
  auto it = view.config.env.begin();
  ++it;
  ++it;
  EXPECT_EQ((*it).value, "/build/python");
  EXPECT_EQ(it.origin().line, 8u);
  EXPECT_EQ(it.origin().column, 16u);
}

TEST(Stamp, AnUnknownEnvFormIsDamaged) {
  Stamp s = sample();
  s.config.env = {{"A", "/x", {1, 1}, EnvMode::kAppend}};
  auto area = encode_stamp(s, "0.2.0");
  ASSERT_TRUE(area.ok());
  // The mode is the u32 after the value's NUL; the checksum is rewritten so
  // that only the mode check can refuse it.
  std::string bytes = *area;
  std::size_t at = bytes.find(std::string("/x\0", 3)) + 3;
  ASSERT_EQ(load_u32(bytes.data() + at), 2u);
  std::uint32_t bad = 3;
  std::memcpy(bytes.data() + at, &bad, sizeof bad);
  StampHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < h.length; ++i) {
    hash ^= static_cast<unsigned char>(bytes[sizeof h + i]);
    hash *= 0x100000001b3ULL;
  }
  h.checksum = hash;
  std::memcpy(bytes.data(), &h, sizeof h);
  StampView view;
  const char* why = nullptr;
  EXPECT_EQ(view_stamp(bytes, view, &why), StampState::kDamaged);
  EXPECT_STREQ(why, "truncated or malformed payload");
  EXPECT_FALSE(decode_stamp(bytes).ok());
}

TEST(Stamp, AFormat1ImageIsRefusedNotMisread) {
  auto area = encode_stamp(sample(), "0.2.0");
  ASSERT_TRUE(area.ok());
  std::string bytes = *area;
  std::uint32_t old = 1;
  std::memcpy(bytes.data() + offsetof(StampHeader, format), &old, sizeof old);
  auto decoded = decode_stamp(bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find("unknown format 1"), std::string::npos);
}

}  // namespace
}  // namespace pyshim
