// The JSON reader (json.hpp): a recursive-descent parser over a string_view
// that tracks line and column for its error messages. Grammar: RFC 8259.
#include "json.hpp"

#include <charconv>
#include <cstdint>
#include <system_error>

namespace weft_trace {

JsonError::JsonError(const std::string& what, std::size_t line, std::size_t column)
    : std::runtime_error(std::to_string(line) + ":" + std::to_string(column) + ": " + what),
      line_(line), column_(column) {}

JsonValue JsonValue::make_bool(bool b) {
  JsonValue v;
  v.kind_ = Kind::boolean;
  v.bool_ = b;
  return v;
}
JsonValue JsonValue::make_number(double n) {
  JsonValue v;
  v.kind_ = Kind::number;
  v.number_ = n;
  return v;
}
JsonValue JsonValue::make_string(std::string s) {
  JsonValue v;
  v.kind_ = Kind::string;
  v.string_ = std::move(s);
  return v;
}
JsonValue JsonValue::make_array(std::vector<JsonValue> items) {
  JsonValue v;
  v.kind_ = Kind::array;
  v.items_ = std::move(items);
  return v;
}
JsonValue JsonValue::make_object(std::vector<Member> members) {
  JsonValue v;
  v.kind_ = Kind::object;
  v.members_ = std::move(members);
  return v;
}

const JsonValue* JsonValue::find(std::string_view key) const noexcept {
  for (const Member& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

const char* describe(JsonValue::Kind kind) noexcept {
  switch (kind) {
    case JsonValue::Kind::null: return "null";
    case JsonValue::Kind::boolean: return "a boolean";
    case JsonValue::Kind::number: return "a number";
    case JsonValue::Kind::string: return "a string";
    case JsonValue::Kind::array: return "an array";
    case JsonValue::Kind::object: return "an object";
  }
  return "a value";
}

namespace {

class Parser {
public:
  using Each = std::function<void(const JsonValue&)>;

  // `each`: parse_json_streaming's callback for the array at `key`, or null.
  explicit Parser(std::string_view text, std::string_view key = {}, const Each* each = nullptr)
      : text_(text), stream_key_(key), each_(each) {}

  JsonValue document() {
    skip_space();
    JsonValue v = each_ != nullptr && !at_end() && peek() == '[' ? array(1, true) : value(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the JSON value");
    return v;
  }

private:
  [[noreturn]] void fail(const std::string& what) const { fail_at(what, pos_); }

  [[noreturn]] void fail_at(const std::string& what, std::size_t at) const {
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw JsonError(what, line, column);
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  static std::string shown(char c) {
    if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
    static const char hex[] = "0123456789abcdef";
    const auto u = static_cast<unsigned char>(c);
    return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
  }

  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  void expect_word(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) fail("invalid literal (expected " + std::string(word) + ")");
    pos_ += word.size();
  }

  JsonValue value(int depth) {
    if (at_end()) fail("unexpected end of input, expected a value");
    switch (peek()) {
      case '{': return object(depth + 1);
      case '[': return array(depth + 1);
      case '"': return JsonValue::make_string(string());
      case 't': expect_word("true"); return JsonValue::make_bool(true);
      case 'f': expect_word("false"); return JsonValue::make_bool(false);
      case 'n': expect_word("null"); return JsonValue();
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return JsonValue::make_number(number());
        fail("unexpected " + shown(peek()) + ", expected a value");
    }
  }

  void check_depth(int depth) const {
    if (depth > k_max_json_depth) fail("nesting deeper than " + std::to_string(k_max_json_depth) + " levels");
  }

  JsonValue object(int depth) {
    check_depth(depth);
    ++pos_;  // '{'
    std::vector<JsonValue::Member> members;
    skip_space();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return JsonValue::make_object(std::move(members));
    }
    for (;;) {
      skip_space();
      if (at_end()) fail("unexpected end of input inside an object");
      if (peek() != '"') fail("unexpected " + shown(peek()) + ", expected a member name in quotes");
      std::string key = string();
      skip_space();
      if (at_end() || peek() != ':') fail("expected ':' after a member name");
      ++pos_;
      skip_space();
      // The streamed array: a member of the top-level object (depth 1).
      const bool stream = each_ != nullptr && depth == 1 && key == stream_key_ && !at_end() && peek() == '[';
      JsonValue v = stream ? array(depth + 1, true) : value(depth);
      members.emplace_back(std::move(key), std::move(v));
      skip_space();
      if (at_end()) fail("unexpected end of input inside an object (missing '}')");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return JsonValue::make_object(std::move(members));
      }
      fail("unexpected " + shown(peek()) + " in an object, expected ',' or '}'");
    }
  }

  // `streamed`: each element goes to each_ and is not kept.
  JsonValue array(int depth, bool streamed = false) {
    check_depth(depth);
    ++pos_;  // '['
    std::vector<JsonValue> items;
    skip_space();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return JsonValue::make_array(std::move(items));
    }
    for (;;) {
      skip_space();
      if (streamed) {
        (*each_)(value(depth));
      } else {
        items.push_back(value(depth));
      }
      skip_space();
      if (at_end()) fail("unexpected end of input inside an array (missing ']')");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return JsonValue::make_array(std::move(items));
      }
      fail("unexpected " + shown(peek()) + " in an array, expected ',' or ']'");
    }
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  std::uint32_t hex4() {
    if (text_.size() - pos_ < 4) fail("unexpected end of input in a \\u escape");
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<std::uint32_t>(c - 'A' + 10);
      else fail("invalid hex digit " + shown(c) + " in a \\u escape");
      ++pos_;
    }
    return v;
  }

  std::string string() {
    const std::size_t start = pos_;
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (at_end()) fail_at("unterminated string", start);
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("control character (" + shown(c) + ") in a string; escape it");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (at_end()) fail_at("unterminated string", start);
      const char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xd800 && cp < 0xdc00) {
            // A high surrogate must be followed by \u and a low one.
            if (text_.substr(pos_, 2) != "\\u") fail("lone high surrogate in a \\u escape");
            pos_ += 2;
            const std::uint32_t low = hex4();
            if (low < 0xdc00 || low >= 0xe000) fail("high surrogate not followed by a low one");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            fail("lone low surrogate in a \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          pos_ -= 2;  // point at the backslash
          fail("invalid escape \\" + std::string(1, e) + " in a string");
      }
    }
  }

  double number() {
    const std::size_t start = pos_;
    auto digits = [&] {
      const std::size_t from = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ - from;
    };
    if (peek() == '-') ++pos_;
    if (at_end()) fail("unexpected end of input in a number");
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') fail("leading zero in a number");
    } else if (digits() == 0) {
      fail("expected a digit in a number");
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (digits() == 0) fail("expected a digit after the decimal point");
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) fail("expected a digit in the exponent");
    }
    double v = 0.0;
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    const auto [ptr, ec] = std::from_chars(first, last, v);
    if (ec == std::errc::result_out_of_range) fail_at("number out of range", start);
    if (ec != std::errc() || ptr != last) fail_at("malformed number", start);
    return v;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::string_view stream_key_;
  const Each* each_;
};

}  // namespace

JsonValue parse_json(std::string_view text) { return Parser(text).document(); }

JsonValue parse_json_streaming(std::string_view text, std::string_view key,
                               const std::function<void(const JsonValue&)>& each) {
  return Parser(text, key, &each).document();
}

}  // namespace weft_trace
