// A small JSON reader for weft-trace: exactly what the trace format needs
// (objects, arrays, strings with escapes, numbers, true/false/null), with the
// line and column of the first error. Not a general-purpose library: no
// writer, objects keep their members in file order, and the one streaming
// form is the trace's: the elements of one large array handed over one at
// a time (parse_json_streaming).
//
// Contract: parse_json() either returns the whole document or throws
// JsonError; it never crashes on bad input. Nesting deeper than
// k_max_json_depth is an error (the reader is recursive, and a file of
// 100 000 '[' must not overflow the stack). Pure function, any thread.
#pragma once

#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weft_trace {

inline constexpr int k_max_json_depth = 256;

// Bad input: what was wrong and where (1-based line and column, in bytes).
class JsonError : public std::runtime_error {
public:
  JsonError(const std::string& what, std::size_t line, std::size_t column);
  std::size_t line() const noexcept { return line_; }
  std::size_t column() const noexcept { return column_; }

private:
  std::size_t line_;
  std::size_t column_;
};

class JsonValue {
public:
  enum class Kind { null, boolean, number, string, array, object };
  using Member = std::pair<std::string, JsonValue>;

  JsonValue() = default;
  static JsonValue make_bool(bool b);
  static JsonValue make_number(double n);
  static JsonValue make_string(std::string s);
  static JsonValue make_array(std::vector<JsonValue> items);
  static JsonValue make_object(std::vector<Member> members);

  Kind kind() const noexcept { return kind_; }
  bool is_null() const noexcept { return kind_ == Kind::null; }
  bool is_bool() const noexcept { return kind_ == Kind::boolean; }
  bool is_number() const noexcept { return kind_ == Kind::number; }
  bool is_string() const noexcept { return kind_ == Kind::string; }
  bool is_array() const noexcept { return kind_ == Kind::array; }
  bool is_object() const noexcept { return kind_ == Kind::object; }

  // The accessors below assume the kind was checked: on another kind they
  // return false / 0 / an empty string / an empty list.
  bool as_bool() const noexcept { return kind_ == Kind::boolean && bool_; }
  double as_number() const noexcept { return kind_ == Kind::number ? number_ : 0.0; }
  const std::string& as_string() const noexcept { return string_; }
  const std::vector<JsonValue>& items() const noexcept { return items_; }
  const std::vector<Member>& members() const noexcept { return members_; }

  // The first member named `key` of an object, or nullptr (also on a non-object).
  const JsonValue* find(std::string_view key) const noexcept;

private:
  Kind kind_ = Kind::null;
  bool bool_ = false;
  double number_ = 0.0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<Member> members_;
};

// Parses one JSON document (surrounding whitespace allowed, nothing else after it).
JsonValue parse_json(std::string_view text);

// parse_json(), except that the elements of one array are handed to `each`
// as soon as each is read, in order, and not kept: the array that is the
// value of the top-level object's member `key`, or the document itself if
// it is an array. That array is empty in the returned document. Errors as
// parse_json() (an exception from `each` passes through). Memory: one
// element at a time instead of the whole array.
JsonValue parse_json_streaming(std::string_view text, std::string_view key,
                               const std::function<void(const JsonValue&)>& each);

// A short description of a kind for error messages: "a number", "an object".
const char* describe(JsonValue::Kind kind) noexcept;

}  // namespace weft_trace
