#include "devcycle/workflow/expression.h"

#include <cmath>
#include <variant>

#include "common/json_schema_internal.h"
#include "devcycle/common/error.h"
#include "workflow/expression_internal.h"

namespace devcycle {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxText = 4096;
constexpr int kMaxDepth = 64;

enum class Tok {
  kEnd,
  kIdent,
  kNumber,
  kString,
  kNull,
  kTrue,
  kFalse,
  kDot,
  kLBracket,
  kRBracket,
  kLParen,
  kRParen,
  kComma,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kAnd,
  kOr,
  kNot,
};

struct Token {
  Tok kind = Tok::kEnd;
  std::size_t pos = 0;
  std::string text;  // identifier name or decoded string
  json number;
};

}  // namespace

struct Expression::Node {
  enum class Kind { kLiteral, kIdent, kMember, kIndex, kNot, kAnd, kOr, kCompare, kIn, kList };
  Kind kind;
  json value;          // kLiteral
  std::string name;    // kIdent, kMember
  Tok op = Tok::kEnd;  // kCompare
  std::vector<std::shared_ptr<const Node>> kids;
};

struct Template::Part {
  std::string literal;
  std::shared_ptr<Expression> expr;  // null: literal text
};

struct ExpressionAccess {
  static const Expression::Node& root(const Expression& e) { return *e.root_; }
  static const std::string& field(const Expression& e) { return e.field_; }
  static const Template& t(const Template& t) { return t; }
  static const std::vector<std::shared_ptr<const Template::Part>>& parts(const Template& t) {
    return t.parts_;
  }
  static bool whole(const Template& t) { return t.whole_; }
  static const std::string& text(const Template& t) { return t.text_; }
};

namespace {

using Node = Expression::Node;
using NodePtr = std::shared_ptr<const Node>;

class Parser {
 public:
  Parser(std::string_view text, std::string_view field) : s_(text), field_(field) { advance(); }

  NodePtr parse_all() {
    auto n = parse_or(0);
    if (tok_.kind != Tok::kEnd) fail(tok_.pos, "unexpected \"" + describe(tok_) + "\"");
    return n;
  }

 private:
  [[noreturn]] void fail(std::size_t pos, const std::string& why) const {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(field_) + ": at character " + std::to_string(pos + 1) + ": " + why);
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd:
        return "end of expression";
      case Tok::kIdent:
        return t.text;
      case Tok::kString:
        return "'" + t.text + "'";
      case Tok::kNumber:
        return t.number.dump();
      default:
        return t.text;
    }
  }

  void advance() { tok_ = lex(); }

  Token lex() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
    Token t;
    t.pos = i_;
    if (i_ >= s_.size()) return t;
    const char c = s_[i_];
    auto two = [&](char next) { return i_ + 1 < s_.size() && s_[i_ + 1] == next; };
    auto sym = [&](Tok k, std::size_t n) {
      t.kind = k;
      t.text = std::string(s_.substr(i_, n));
      i_ += n;
      return t;
    };
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t j = i_;
      while (j < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[j])) || s_[j] == '_'))
        ++j;
      t.text = std::string(s_.substr(i_, j - i_));
      i_ = j;
      if (t.text == "null")
        t.kind = Tok::kNull;
      else if (t.text == "true")
        t.kind = Tok::kTrue;
      else if (t.text == "false")
        t.kind = Tok::kFalse;
      else if (t.text == "and")
        t.kind = Tok::kAnd;
      else if (t.text == "or")
        t.kind = Tok::kOr;
      else if (t.text == "not")
        t.kind = Tok::kNot;
      else if (t.text == "in")
        t.kind = Tok::kIn;
      else
        t.kind = Tok::kIdent;
      return t;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '-' && i_ + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_ + 1])))) {
      std::size_t j = i_ + 1;
      while (j < s_.size() &&
             (std::isdigit(static_cast<unsigned char>(s_[j])) || s_[j] == '.' || s_[j] == 'e' ||
              s_[j] == 'E' ||
              ((s_[j] == '+' || s_[j] == '-') && (s_[j - 1] == 'e' || s_[j - 1] == 'E')))) {
        ++j;
      }
      const auto text = s_.substr(i_, j - i_);
      json n = json::parse(text, nullptr, false);
      if (n.is_discarded() || !n.is_number())
        fail(i_, "\"" + std::string(text) + "\" is not a number");
      t.kind = Tok::kNumber;
      t.number = std::move(n);
      i_ = j;
      return t;
    }
    if (c == '\'' || c == '"') {
      std::size_t j = i_ + 1;
      std::string out;
      while (j < s_.size() && s_[j] != c) {
        if (s_[j] == '\\') {
          if (j + 1 >= s_.size()) break;
          const char e = s_[j + 1];
          switch (e) {
            case 'n':
              out.push_back('\n');
              break;
            case 't':
              out.push_back('\t');
              break;
            case '\\':
            case '\'':
            case '"':
              out.push_back(e);
              break;
            default:
              fail(j, std::string("unknown escape \\") + e);
          }
          j += 2;
        } else {
          out.push_back(s_[j++]);
        }
      }
      if (j >= s_.size()) fail(i_, "unterminated string");
      t.kind = Tok::kString;
      t.text = std::move(out);
      i_ = j + 1;
      return t;
    }
    switch (c) {
      case '.':
        return sym(Tok::kDot, 1);
      case '[':
        return sym(Tok::kLBracket, 1);
      case ']':
        return sym(Tok::kRBracket, 1);
      case '(':
        return sym(Tok::kLParen, 1);
      case ')':
        return sym(Tok::kRParen, 1);
      case ',':
        return sym(Tok::kComma, 1);
      case '=':
        if (two('=')) return sym(Tok::kEq, 2);
        break;
      case '!':
        return two('=') ? sym(Tok::kNe, 2) : sym(Tok::kNot, 1);
      case '<':
        return two('=') ? sym(Tok::kLe, 2) : sym(Tok::kLt, 1);
      case '>':
        return two('=') ? sym(Tok::kGe, 2) : sym(Tok::kGt, 1);
      case '&':
        if (two('&')) return sym(Tok::kAnd, 2);
        break;
      case '|':
        if (two('|')) return sym(Tok::kOr, 2);
        break;
      default:
        break;
    }
    fail(i_, std::string("unexpected character '") + c + "'" +
                 (c == '=' ? " (use == to compare)" : ""));
  }

  void depth_check(int depth) const {
    if (depth > kMaxDepth)
      fail(tok_.pos, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
  }

  static NodePtr make(Node::Kind k, std::vector<NodePtr> kids = {}) {
    auto n = std::make_shared<Node>();
    n->kind = k;
    n->kids = std::move(kids);
    return n;
  }

  NodePtr parse_or(int depth) {
    depth_check(depth);
    auto left = parse_and(depth + 1);
    while (tok_.kind == Tok::kOr) {
      advance();
      left = make(Node::Kind::kOr, {left, parse_and(depth + 1)});
    }
    return left;
  }

  NodePtr parse_and(int depth) {
    auto left = parse_not(depth + 1);
    while (tok_.kind == Tok::kAnd) {
      advance();
      left = make(Node::Kind::kAnd, {left, parse_not(depth + 1)});
    }
    return left;
  }

  NodePtr parse_not(int depth) {
    depth_check(depth);
    if (tok_.kind == Tok::kNot) {
      advance();
      return make(Node::Kind::kNot, {parse_not(depth + 1)});
    }
    return parse_compare(depth + 1);
  }

  NodePtr parse_compare(int depth) {
    auto left = parse_postfix(depth + 1);
    const Tok op = tok_.kind;
    if (op == Tok::kEq || op == Tok::kNe || op == Tok::kLt || op == Tok::kLe || op == Tok::kGt ||
        op == Tok::kGe || op == Tok::kIn) {
      const auto pos = tok_.pos;
      advance();
      auto right = parse_postfix(depth + 1);
      const Tok next = tok_.kind;
      if (next == Tok::kEq || next == Tok::kNe || next == Tok::kLt || next == Tok::kLe ||
          next == Tok::kGt || next == Tok::kGe || next == Tok::kIn) {
        fail(tok_.pos, "comparisons do not chain; use parentheses and && instead");
      }
      (void)pos;
      auto n = std::make_shared<Node>();
      n->kind = op == Tok::kIn ? Node::Kind::kIn : Node::Kind::kCompare;
      n->op = op;
      n->kids = {left, right};
      return n;
    }
    return left;
  }

  NodePtr parse_postfix(int depth) {
    depth_check(depth);
    auto n = parse_primary(depth + 1);
    for (;;) {
      if (tok_.kind == Tok::kDot) {
        advance();
        if (tok_.kind != Tok::kIdent && tok_.kind != Tok::kIn && tok_.kind != Tok::kAnd &&
            tok_.kind != Tok::kOr && tok_.kind != Tok::kNot && tok_.kind != Tok::kNull &&
            tok_.kind != Tok::kTrue && tok_.kind != Tok::kFalse) {
          fail(tok_.pos, "expected a field name after '.'");
        }
        auto m = std::make_shared<Node>();
        m->kind = Node::Kind::kMember;
        m->name = tok_.text;
        m->kids = {n};
        n = m;
        advance();
      } else if (tok_.kind == Tok::kLBracket) {
        advance();
        auto index = parse_or(depth + 1);
        if (tok_.kind != Tok::kRBracket) fail(tok_.pos, "expected ']'");
        advance();
        n = make(Node::Kind::kIndex, {n, index});
      } else {
        return n;
      }
    }
  }

  NodePtr parse_primary(int depth) {
    depth_check(depth);
    auto n = std::make_shared<Node>();
    switch (tok_.kind) {
      case Tok::kNull:
        n->kind = Node::Kind::kLiteral;
        n->value = nullptr;
        break;
      case Tok::kTrue:
        n->kind = Node::Kind::kLiteral;
        n->value = true;
        break;
      case Tok::kFalse:
        n->kind = Node::Kind::kLiteral;
        n->value = false;
        break;
      case Tok::kNumber:
        n->kind = Node::Kind::kLiteral;
        n->value = tok_.number;
        break;
      case Tok::kString:
        n->kind = Node::Kind::kLiteral;
        n->value = tok_.text;
        break;
      case Tok::kIdent:
        n->kind = Node::Kind::kIdent;
        n->name = tok_.text;
        break;
      case Tok::kLParen: {
        advance();
        auto inner = parse_or(depth + 1);
        if (tok_.kind != Tok::kRParen) fail(tok_.pos, "expected ')'");
        advance();
        return inner;
      }
      case Tok::kLBracket: {
        advance();
        n->kind = Node::Kind::kList;
        while (tok_.kind != Tok::kRBracket) {
          n->kids.push_back(parse_or(depth + 1));
          if (tok_.kind == Tok::kComma) {
            advance();
          } else if (tok_.kind != Tok::kRBracket) {
            fail(tok_.pos, "expected ',' or ']' in a list");
          }
        }
        advance();
        return n;
      }
      case Tok::kEnd:
        fail(tok_.pos, "expected a value, found the end of the expression");
      default:
        fail(tok_.pos, "expected a value, found \"" + describe(tok_) + "\"");
    }
    advance();
    return n;
  }

  std::string_view s_;
  std::string_view field_;
  std::size_t i_ = 0;
  Token tok_;
};

const json kNull = nullptr;

class Evaluator {
 public:
  Evaluator(const json& ctx, const std::string& field) : ctx_(ctx), field_(field) {}

  json eval(const Node& n) {
    switch (n.kind) {
      case Node::Kind::kLiteral:
        return n.value;
      case Node::Kind::kIdent:
        return lookup(ctx_, n.name);
      case Node::Kind::kMember:
        return lookup(eval(*n.kids[0]), n.name);
      case Node::Kind::kIndex: {
        const json base = eval(*n.kids[0]);
        const json key = eval(*n.kids[1]);
        if (base.is_array() && key.is_number_integer()) {
          const auto i = key.get<std::int64_t>();
          if (i >= 0 && static_cast<std::size_t>(i) < base.size())
            return base[static_cast<std::size_t>(i)];
          return nullptr;
        }
        if (base.is_object() && key.is_string()) return lookup(base, key.get<std::string>());
        return nullptr;
      }
      case Node::Kind::kNot:
        return !internal::truthy(eval(*n.kids[0]));
      case Node::Kind::kAnd:
        return internal::truthy(eval(*n.kids[0])) && internal::truthy(eval(*n.kids[1]));
      case Node::Kind::kOr:
        return internal::truthy(eval(*n.kids[0])) || internal::truthy(eval(*n.kids[1]));
      case Node::Kind::kList: {
        json out = json::array();
        for (const auto& k : n.kids) out.push_back(eval(*k));
        return out;
      }
      case Node::Kind::kIn: {
        const json needle = eval(*n.kids[0]);
        const json hay = eval(*n.kids[1]);
        if (hay.is_array()) {
          for (const auto& v : hay) {
            if (v == needle) return true;
          }
          return false;
        }
        if (hay.is_string() && needle.is_string()) {
          return hay.get_ref<const std::string&>().find(needle.get_ref<const std::string&>()) !=
                 std::string::npos;
        }
        if (hay.is_object() && needle.is_string()) return hay.contains(needle.get<std::string>());
        if (hay.is_null()) return false;
        fail("'in' needs a list, a string or an object on its right, not " + type_name(hay));
      }
      case Node::Kind::kCompare: {
        const json a = eval(*n.kids[0]);
        const json b = eval(*n.kids[1]);
        if (n.op == Tok::kEq) return a == b;
        if (n.op == Tok::kNe) return a != b;
        if (!((a.is_number() && b.is_number()) || (a.is_string() && b.is_string()))) {
          fail("cannot order " + type_name(a) + " and " + type_name(b) +
               " (only two numbers or two strings)");
        }
        switch (n.op) {
          case Tok::kLt:
            return a < b;
          case Tok::kLe:
            return a <= b;
          case Tok::kGt:
            return a > b;
          default:
            return a >= b;
        }
      }
    }
    return nullptr;
  }

 private:
  static json lookup(const json& base, const std::string& name) {
    if (!base.is_object()) return nullptr;
    const auto it = base.find(name);
    return it == base.end() ? kNull : *it;
  }

  static std::string type_name(const json& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number()) return "a number";
    if (v.is_string()) return "a string";
    if (v.is_array()) return "a list";
    return "an object";
  }

  [[noreturn]] void fail(const std::string& why) const {
    throw Error(ErrorCode::kInvalidArgument, field_ + ": " + why);
  }

  const json& ctx_;
  const std::string& field_;
};

void collect(const Node& n, std::vector<std::vector<std::string>>& out) {
  // A chain of member accesses (and constant string/integer indexes) that
  // starts at an identifier is one reference.
  std::vector<std::string> path;
  const Node* cur = &n;
  bool chain = true;
  while (cur->kind == Node::Kind::kMember || cur->kind == Node::Kind::kIndex) {
    if (cur->kind == Node::Kind::kMember) {
      path.insert(path.begin(), cur->name);
    } else {
      const Node& k = *cur->kids[1];
      if (k.kind == Node::Kind::kLiteral && k.value.is_string()) {
        path.insert(path.begin(), k.value.get<std::string>());
      } else {
        path.clear();  // a computed index: the reference ends before it
        collect(k, out);
      }
    }
    cur = cur->kids[0].get();
  }
  if (cur->kind == Node::Kind::kIdent) {
    path.insert(path.begin(), cur->name);
    out.push_back(std::move(path));
    return;
  }
  (void)chain;
  for (const auto& k : cur->kids) collect(*k, out);
}

}  // namespace

namespace internal {

bool truthy(const json& v) noexcept {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0.0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  if (v.is_array() || v.is_object()) return !v.empty();
  return true;
}

json evaluate(const Expression& e, const json& context) {
  return Evaluator(context, ExpressionAccess::field(e)).eval(ExpressionAccess::root(e));
}

json render(const Template& t, const json& context) {
  const auto& parts = ExpressionAccess::parts(t);
  if (parts.empty()) return ExpressionAccess::text(t);
  if (ExpressionAccess::whole(t)) return evaluate(*parts.front()->expr, context);
  std::string out;
  for (const auto& p : parts) {
    if (!p->expr) {
      out += p->literal;
      continue;
    }
    const json v = evaluate(*p->expr, context);
    if (v.is_string())
      out += v.get<std::string>();
    else if (!v.is_null())
      out += v.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return out;
}

}  // namespace internal

Expression Expression::parse(std::string_view text, std::string_view field) {
  if (text.size() > kMaxText) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(field) + ": longer than " + std::to_string(kMaxText) + " bytes");
  }
  Expression e;
  e.root_ = Parser(text, field).parse_all();
  e.text_ = std::string(text);
  e.field_ = std::string(field);
  return e;
}

std::string Expression::evaluate(std::string_view context_json) const {
  return internal::evaluate(*this, internal::parse_json(context_json, field_ + " context"))
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

bool Expression::evaluate_condition(std::string_view context_json) const {
  return internal::truthy(
      internal::evaluate(*this, internal::parse_json(context_json, field_ + " context")));
}

std::vector<std::vector<std::string>> Expression::references() const {
  std::vector<std::vector<std::string>> out;
  collect(*root_, out);
  return out;
}

const std::string& Expression::text() const noexcept { return text_; }

Template Template::parse(std::string_view text, std::string_view field) {
  if (text.size() > 64 * 1024) {
    throw Error(ErrorCode::kInvalidArgument, std::string(field) + ": longer than 65536 bytes");
  }
  Template t;
  t.text_ = std::string(text);
  t.field_ = std::string(field);
  std::size_t i = 0;
  std::string literal;
  while (i < text.size()) {
    const auto open = text.find("{{", i);
    if (open == std::string_view::npos) {
      literal += text.substr(i);
      break;
    }
    literal += text.substr(i, open - i);
    // Find the closing }} outside quoted strings.
    std::size_t j = open + 2;
    char quote = 0;
    for (; j + 1 < text.size(); ++j) {
      const char c = text[j];
      if (quote) {
        if (c == '\\')
          ++j;
        else if (c == quote)
          quote = 0;
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == '}' && text[j + 1] == '}') {
        break;
      }
    }
    if (j + 1 >= text.size()) {
      throw Error(ErrorCode::kInvalidArgument, std::string(field) + ": at character " +
                                                   std::to_string(open + 1) + ": unclosed {{");
    }
    if (!literal.empty()) {
      t.parts_.push_back(std::make_shared<Part>(Part{std::move(literal), nullptr}));
      literal.clear();
    }
    const auto inner = text.substr(open + 2, j - open - 2);
    try {
      auto expr = std::make_shared<Expression>(Expression::parse(inner, field));
      t.parts_.push_back(std::make_shared<Part>(Part{"", std::move(expr)}));
    } catch (const Error& e) {
      // Point at the character in the whole template, not in the {{ }} part.
      std::string msg = e.what();
      const std::string marker = std::string(field) + ": at character ";
      if (msg.starts_with(marker)) {
        const auto rest = msg.substr(marker.size());
        const auto colon = rest.find(':');
        const auto n = std::stoul(rest.substr(0, colon));
        msg = marker + std::to_string(n + open + 2) + rest.substr(colon);
      }
      throw Error(ErrorCode::kInvalidArgument, msg);
    }
    i = j + 2;
  }
  if (!t.parts_.empty() && !literal.empty()) {
    t.parts_.push_back(std::make_shared<Part>(Part{std::move(literal), nullptr}));
  }
  t.whole_ = t.parts_.size() == 1 && t.parts_.front()->expr;
  return t;
}

std::string Template::render(std::string_view context_json) const {
  return internal::render(*this, internal::parse_json(context_json, field_ + " context"))
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<std::vector<std::string>> Template::references() const {
  std::vector<std::vector<std::string>> out;
  for (const auto& p : parts_) {
    if (p->expr) {
      auto refs = p->expr->references();
      out.insert(out.end(), refs.begin(), refs.end());
    }
  }
  return out;
}

}  // namespace devcycle
