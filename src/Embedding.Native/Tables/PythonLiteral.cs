using System;
using System.Collections.Generic;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace Embedding.Native;

/// <summary>
/// A reader of Python literals, for the dict a .npy header holds (<c>{'descr': '&lt;f4', 'fortran_order':
/// False, 'shape': (3, 4), }</c>): what <c>ast.literal_eval</c> accepts of strings, bytes, numbers,
/// <c>True</c>, <c>False</c>, <c>None</c>, tuples, lists and dicts, and nothing else. No name other than
/// those three constants means anything, so a header can run no code.
/// </summary>
/// <remarks>
/// Values come back as <see cref="string"/>, <see cref="PythonBytes"/>, <see cref="BigInteger"/> (Python's
/// ints are unbounded), <see cref="double"/>, <see cref="PythonComplex"/>, <see cref="bool"/>,
/// <see cref="PythonNone"/>, <see cref="PythonTuple"/>, <see cref="List{T}"/> of values and
/// <see cref="Dictionary{TKey, TValue}"/> (a repeated key keeps its last value, as in Python). A malformed
/// text fails with <see cref="PythonLiteralError.Syntax"/>; well-formed Python that is not a literal (a
/// name, a call, an operator other than a sign) with <see cref="PythonLiteralError.NotALiteral"/>, the two
/// cases numpy's reader (through <c>ast</c>) tells apart. Containers may nest at most
/// <see cref="MaxDepth"/> deep.
/// </remarks>
internal sealed class PythonLiteral
{
    /// <summary>The deepest nesting of containers read; deeper text is refused as not a literal.</summary>
    public const int MaxDepth = 64;

    /// <summary>
    /// The most digits an integer may have: Python's own limit (<c>sys.get_int_max_str_digits()</c>), which
    /// also keeps a hostile header from making the reader multiply huge numbers.
    /// </summary>
    public const int MaxIntegerDigits = 4300;

    private readonly string _text;
    private int _position;
    private int _depth;

    private PythonLiteral(string text) => _text = text;

    /// <summary>Reads <paramref name="text"/> (surrounding whitespace allowed) as one literal.</summary>
    /// <exception cref="PythonLiteralException">The text is not a Python literal.</exception>
    public static object Parse(string text)
    {
        var reader = new PythonLiteral(text);
        object value = reader.Value();
        reader.SkipSpace();
        if (reader._position != text.Length)
        {
            throw reader.Fail(PythonLiteralError.Syntax, "text after the literal");
        }

        return value;
    }

    /// <summary>Python's <c>repr</c> of a value this reader returned, for messages.</summary>
    public static string Repr(object value) => value switch
    {
        string text => QuoteRepr(text),
        PythonBytes bytes => "b" + QuoteRepr(bytes.Text),
        BigInteger integer => integer.ToString(CultureInfo.InvariantCulture),
        double number => double.IsFinite(number) ? ReprFloat(number) : double.IsNaN(number) ? "nan" : number > 0 ? "inf" : "-inf",
        PythonComplex complex => complex.Text,
        bool flag => flag ? "True" : "False",
        PythonNone => "None",
        PythonTuple tuple => tuple.Items.Count == 1 ? $"({Repr(tuple.Items[0])},)" : "(" + string.Join(", ", tuple.Items.ConvertAll(Repr)) + ")",
        List<object> list => "[" + string.Join(", ", list.ConvertAll(Repr)) + "]",
        Dictionary<object, object> dict => "{" + string.Join(", ", EntriesRepr(dict)) + "}",
        _ => value.ToString() ?? "",
    };

    private static IEnumerable<string> EntriesRepr(Dictionary<object, object> dict)
    {
        foreach (KeyValuePair<object, object> entry in dict)
        {
            yield return $"{Repr(entry.Key)}: {Repr(entry.Value)}";
        }
    }

    private static string ReprFloat(double number)
    {
        string text = number.ToString("R", CultureInfo.InvariantCulture);
        return text.Contains('.') || text.Contains('E') ? text : text + ".0";
    }

    private static string QuoteRepr(string text)
    {
        char quote = text.Contains('\'') && !text.Contains('"') ? '"' : '\'';
        var builder = new StringBuilder().Append(quote);
        foreach (char c in text)
        {
            builder.Append(c switch
            {
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when c == quote => "\\" + c,
                _ when c < ' ' || c == '\x7f' => $"\\x{(int)c:x2}",
                _ => c.ToString(),
            });
        }

        return builder.Append(quote).ToString();
    }

    private object Value()
    {
        SkipSpace();
        if (_position == _text.Length)
        {
            throw Fail(PythonLiteralError.Syntax, "unexpected end of text");
        }

        char c = _text[_position];
        switch (c)
        {
            case '{':
                return Container('}', dict: true);
            case '[':
                return Container(']', dict: false);
            case '(':
                return Container(')', dict: false);
            case '+' or '-':
                return Signed();
            case '\'' or '"':
                return Strings();
        }

        if (char.IsAsciiDigit(c) || (c == '.' && _position + 1 < _text.Length && char.IsAsciiDigit(_text[_position + 1])))
        {
            return Number();
        }

        if (IsNameStart(c))
        {
            int start = _position;
            while (_position < _text.Length && IsNamePart(_text[_position]))
            {
                _position++;
            }

            string name = _text[start.._position];
            if (_position < _text.Length && (_text[_position] is '\'' or '"') && IsStringPrefix(name))
            {
                _position = start;
                return Strings();
            }

            return name switch
            {
                "True" => true,
                "False" => false,
                "None" => PythonNone.Instance,
                _ => throw Fail(PythonLiteralError.NotALiteral, $"the name {name}"),
            };
        }

        throw Fail(PythonLiteralError.Syntax, $"unexpected character {QuoteRepr(c.ToString())}");
    }

    /// <summary>A dict, list or tuple; the opening bracket is at the cursor.</summary>
    private object Container(char close, bool dict)
    {
        bool tuple = close == ')';
        if (++_depth > MaxDepth)
        {
            throw Fail(PythonLiteralError.NotALiteral, "containers nested too deep");
        }

        _position++;
        var items = new List<object>();
        var entries = new Dictionary<object, object>();
        bool trailingComma = false;
        while (true)
        {
            SkipSpace();
            if (_position < _text.Length && _text[_position] == close)
            {
                _position++;
                break;
            }

            if (items.Count > 0 || entries.Count > 0 || trailingComma)
            {
                if (!trailingComma)
                {
                    throw Fail(PythonLiteralError.Syntax, $"expected ',' or '{close}'");
                }
            }

            object item = Value();
            if (dict)
            {
                SkipSpace();
                if (_position == _text.Length || _text[_position] != ':')
                {
                    throw Fail(PythonLiteralError.Syntax, "expected ':' after a dict key");
                }

                _position++;
                object value = Value();
                if (item is List<object> or Dictionary<object, object>)
                {
                    throw Fail(PythonLiteralError.NotALiteral, "an unhashable dict key");
                }

                entries[item] = value;
            }
            else
            {
                items.Add(item);
            }

            SkipSpace();
            trailingComma = _position < _text.Length && _text[_position] == ',';
            if (trailingComma)
            {
                _position++;
            }
            else if (_position < _text.Length && _text[_position] != close)
            {
                throw Fail(PythonLiteralError.Syntax, $"expected ',' or '{close}'");
            }
        }

        _depth--;
        if (dict)
        {
            return entries;
        }

        // "(x)" is x in parentheses; "(x,)" and "()" are tuples.
        if (tuple && items.Count == 1 && !trailingComma)
        {
            return items[0];
        }

        return tuple ? new PythonTuple(items) : items;
    }

    /// <summary>A number after unary signs: Python parses <c>-2</c> as minus applied to 2, which literal_eval allows for numbers only.</summary>
    private object Signed()
    {
        bool negative = false;
        while (true)
        {
            SkipSpace();
            if (_position < _text.Length && _text[_position] is '+' or '-')
            {
                negative ^= _text[_position] == '-';
                _position++;
                continue;
            }

            break;
        }

        object operand = Value();
        return operand switch
        {
            BigInteger integer => negative ? -integer : integer,
            double number => negative ? -number : number,
            PythonComplex complex => negative ? new PythonComplex("-" + complex.Text) : complex,
            _ => throw Fail(PythonLiteralError.NotALiteral, "a sign applied to something other than a number"),
        };
    }

    /// <summary>An int, float or imaginary number in any of Python's spellings (underscores, 0x, 0o, 0b, exponents).</summary>
    private object Number()
    {
        int start = _position;
        while (_position < _text.Length)
        {
            char c = _text[_position];
            bool exponentSign = (c is '+' or '-') && _position > start && (_text[_position - 1] is 'e' or 'E') && !IsPrefixed(start);
            if (char.IsAsciiLetterOrDigit(c) || c is '_' or '.' || exponentSign)
            {
                _position++;
                continue;
            }

            break;
        }

        string token = _text[start.._position];
        if (token.EndsWith('j') || token.EndsWith('J'))
        {
            return ParseFloat(token[..^1]) is not null ? new PythonComplex(token) : throw Fail(PythonLiteralError.Syntax, $"invalid number {token}");
        }

        bool prefixed = token.Length > 1 && token[0] == '0' && char.ToLowerInvariant(token[1]) is 'x' or 'o' or 'b';
        bool integerShaped = prefixed || !token.AsSpan().ContainsAny(".eE");
        int digits = token.Length - token.AsSpan().Count('_') - (prefixed ? 2 : 0);
        if (token.Length > 2 * MaxIntegerDigits || (integerShaped && digits > MaxIntegerDigits))
        {
            throw Fail(PythonLiteralError.Syntax, $"a number of {token.Length} characters (integers may have at most {MaxIntegerDigits} digits, as in Python)");
        }

        if (ParseInteger(token) is { } integer)
        {
            return integer;
        }

        return ParseFloat(token) ?? throw Fail(PythonLiteralError.Syntax, $"invalid number {token}");
    }

    private bool IsPrefixed(int start) => _position - start >= 2 && _text[start] == '0' && _text[start + 1] is 'x' or 'X';

    private static BigInteger? ParseInteger(string token)
    {
        int radix = 10;
        string digits = token;
        if (token.Length > 2 && token[0] == '0' && char.ToLowerInvariant(token[1]) is 'x' or 'o' or 'b')
        {
            radix = char.ToLowerInvariant(token[1]) switch { 'x' => 16, 'o' => 8, _ => 2 };
            digits = token[2..];
            if (digits.StartsWith('_'))
            {
                digits = digits[1..];
            }
        }

        if (!ValidUnderscores(digits))
        {
            return null;
        }

        digits = digits.Replace("_", "", StringComparison.Ordinal);
        if (radix == 10 && digits.Length > 1 && digits[0] == '0' && digits.AsSpan().ContainsAnyExcept('0'))
        {
            return null; // "012" is a syntax error in Python 3
        }

        BigInteger value = BigInteger.Zero;
        foreach (char c in digits)
        {
            int digit = char.IsAsciiDigit(c) ? c - '0' : char.IsAsciiLetter(c) ? char.ToLowerInvariant(c) - 'a' + 10 : radix;
            if (digit >= radix)
            {
                return null;
            }

            value = value * radix + digit;
        }

        return value;
    }

    private static double? ParseFloat(string token)
    {
        if (!ValidUnderscores(token) || token.Contains("._", StringComparison.Ordinal) || token.Contains("_.", StringComparison.Ordinal)
            || token.Contains("_e", StringComparison.OrdinalIgnoreCase) || token.Contains("e_", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        string plain = token.Replace("_", "", StringComparison.Ordinal);
        foreach (char c in plain)
        {
            if (!(char.IsAsciiDigit(c) || c is '.' or 'e' or 'E' or '+' or '-'))
            {
                return null;
            }
        }

        return double.TryParse(plain, NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out double value) ? value : null;
    }

    /// <summary>Underscores only between digits, one at a time, as Python allows.</summary>
    private static bool ValidUnderscores(string digits) =>
        digits.Length > 0 && digits[0] != '_' && digits[^1] != '_' && !digits.Contains("__", StringComparison.Ordinal);

    /// <summary>One string literal, or several adjacent ones, which Python concatenates.</summary>
    private object Strings()
    {
        var text = new StringBuilder();
        bool? bytes = null;
        while (true)
        {
            SkipSpace();
            int start = _position;
            while (_position < _text.Length && char.IsAsciiLetter(_text[_position]))
            {
                _position++;
            }

            string prefix = _text[start.._position].ToLowerInvariant();
            if (_position == _text.Length || _text[_position] is not ('\'' or '"') || !IsStringPrefix(prefix))
            {
                _position = start;
                break;
            }

            bool isBytes = prefix.Contains('b');
            if (bytes is { } previous && previous != isBytes)
            {
                throw Fail(PythonLiteralError.Syntax, "bytes and str literals concatenated");
            }

            if (prefix.Contains('f'))
            {
                throw Fail(PythonLiteralError.NotALiteral, "an f-string");
            }

            bytes = isBytes;
            ReadQuoted(text, raw: prefix.Contains('r'), isBytes);
        }

        return bytes == true ? new PythonBytes(text.ToString()) : text.ToString();
    }

    private void ReadQuoted(StringBuilder text, bool raw, bool isBytes)
    {
        char quote = _text[_position];
        bool triple = _position + 2 < _text.Length && _text[_position + 1] == quote && _text[_position + 2] == quote;
        _position += triple ? 3 : 1;
        while (true)
        {
            if (_position >= _text.Length)
            {
                throw Fail(PythonLiteralError.Syntax, "unterminated string");
            }

            char c = _text[_position];
            if (c == quote && (!triple || (_position + 2 < _text.Length && _text[_position + 1] == quote && _text[_position + 2] == quote)))
            {
                _position += triple ? 3 : 1;
                return;
            }

            if (c == '\n' && !triple)
            {
                throw Fail(PythonLiteralError.Syntax, "unterminated string");
            }

            if (isBytes && c > '\x7f')
            {
                throw Fail(PythonLiteralError.Syntax, "a non-ASCII character in a bytes literal");
            }

            if (c != '\\')
            {
                text.Append(c);
                _position++;
                continue;
            }

            if (_position + 1 >= _text.Length)
            {
                throw Fail(PythonLiteralError.Syntax, "unterminated string");
            }

            char next = _text[_position + 1];
            if (raw)
            {
                // A raw string keeps the backslash; it still cannot end the string.
                text.Append(c).Append(next);
                _position += 2;
                continue;
            }

            _position += 2;
            switch (next)
            {
                case '\n': break;
                case '\\' or '\'' or '"': text.Append(next); break;
                case 'a': text.Append('\a'); break;
                case 'b': text.Append('\b'); break;
                case 'f': text.Append('\f'); break;
                case 'n': text.Append('\n'); break;
                case 'r': text.Append('\r'); break;
                case 't': text.Append('\t'); break;
                case 'v': text.Append('\v'); break;
                case 'x': text.Append((char)HexEscape(2)); break;
                case 'u' when !isBytes: text.Append((char)HexEscape(4)); break;
                case 'U' when !isBytes: text.Append(char.ConvertFromUtf32(CheckedCodePoint(HexEscape(8)))); break;
                case 'N' when !isBytes: throw Fail(PythonLiteralError.NotALiteral, "a \\N{...} escape (named characters are not read)");
                case >= '0' and <= '7':
                    int value = next - '0';
                    for (int k = 0; k < 2 && _position < _text.Length && _text[_position] is >= '0' and <= '7'; k++)
                    {
                        value = value * 8 + (_text[_position++] - '0');
                    }

                    text.Append((char)value);
                    break;
                default:
                    text.Append('\\').Append(next); // Python keeps unknown escapes as written
                    break;
            }
        }
    }

    private int HexEscape(int digits)
    {
        if (_position + digits > _text.Length || !int.TryParse(_text.AsSpan(_position, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int value))
        {
            throw Fail(PythonLiteralError.Syntax, "a truncated \\x, \\u or \\U escape");
        }

        _position += digits;
        return value;
    }

    private int CheckedCodePoint(int value) =>
        value is >= 0 and <= 0x10FFFF and not (>= 0xD800 and <= 0xDFFF) ? value : throw Fail(PythonLiteralError.Syntax, "an escape outside Unicode");

    private static bool IsStringPrefix(string prefix) =>
        prefix.ToLowerInvariant() is "" or "r" or "u" or "b" or "f" or "br" or "rb" or "fr" or "rf";

    private static bool IsNameStart(char c) => char.IsLetter(c) || c == '_';

    private static bool IsNamePart(char c) => char.IsLetterOrDigit(c) || c == '_';

    /// <summary>Skips whitespace, line continuations and comments, as Python's tokenizer does inside brackets.</summary>
    private void SkipSpace()
    {
        while (_position < _text.Length)
        {
            char c = _text[_position];
            if (c is ' ' or '\t' or '\n' or '\r' or '\f')
            {
                _position++;
            }
            else if (c == '\\' && _position + 1 < _text.Length && _text[_position + 1] == '\n')
            {
                _position += 2;
            }
            else if (c == '#')
            {
                while (_position < _text.Length && _text[_position] != '\n')
                {
                    _position++;
                }
            }
            else
            {
                return;
            }
        }
    }

    private PythonLiteralException Fail(PythonLiteralError error, string detail) => new(error, $"{detail} at character {_position}");
}

/// <summary>Why a text is not a Python literal.</summary>
internal enum PythonLiteralError
{
    /// <summary>Not valid Python.</summary>
    Syntax,

    /// <summary>Valid Python, but not a literal (a name, a call, an operator).</summary>
    NotALiteral,
}

/// <summary>A text <see cref="PythonLiteral"/> could not read.</summary>
internal sealed class PythonLiteralException(PythonLiteralError error, string message) : Exception(message)
{
    public PythonLiteralError Error { get; } = error;
}

/// <summary>A Python tuple (a list is a <see cref="List{T}"/>).</summary>
internal sealed record PythonTuple(List<object> Items);

/// <summary>A Python bytes literal; its characters are the bytes.</summary>
internal sealed record PythonBytes(string Text);

/// <summary>A Python imaginary number, kept as written (no table header uses one).</summary>
internal sealed record PythonComplex(string Text);

/// <summary>Python's <c>None</c>.</summary>
internal sealed class PythonNone
{
    public static readonly PythonNone Instance = new();

    private PythonNone()
    {
    }
}
