// The toy tokenizer (rules in tokenizer.hpp).
#include "engine/tokenizer.hpp"

#include "engine/hash.hpp"

namespace eta::engine {

namespace {

constexpr int kMaxRun = 4;  // letters/digits per piece

constexpr bool is_alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Length in bytes of the piece starting at `i` (i < text.size()).
inline std::size_t piece_length(std::string_view text, std::size_t i) {
  const std::size_t n = text.size();
  std::size_t j = i;
  if (text[j] == ' ' && j + 1 < n && is_alnum(static_cast<unsigned char>(text[j + 1]))) {
    ++j;  // the leading space belongs to the run that follows
  } else if (!is_alnum(static_cast<unsigned char>(text[j]))) {
    return 1;  // any other single byte
  }
  const std::size_t run_start = j;
  while (j < n && j - run_start < kMaxRun && is_alnum(static_cast<unsigned char>(text[j]))) ++j;
  return j - i;
}

uint32_t piece_id(std::string_view piece) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
  for (char c : piece) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return static_cast<uint32_t>(h % kToyVocab);
}

}  // namespace

int count_tokens(std::string_view text) {
  int count = 0;
  for (std::size_t i = 0; i < text.size(); i += piece_length(text, i)) ++count;
  return count;
}

std::vector<uint32_t> tokenize(std::string_view text) {
  std::vector<uint32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = piece_length(text, i);
    ids.push_back(piece_id(text.substr(i, len)));
    i += len;
  }
  return ids;
}

std::string output_token_text(uint64_t seed, int index) {
  const uint64_t r = mix64(seed ^ mix64(static_cast<uint64_t>(index) + 0x9e3779b97f4a7c15ull));
  const int letters = 1 + static_cast<int>(r % 4);
  std::string out(static_cast<std::size_t>(letters) + 1, ' ');
  for (int k = 0; k < letters; ++k) {
    out[static_cast<std::size_t>(k) + 1] = static_cast<char>('a' + (r >> (8 + 10 * k)) % 26);
  }
  return out;
}

}  // namespace eta::engine
