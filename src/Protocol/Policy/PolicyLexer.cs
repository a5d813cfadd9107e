using System.Globalization;
using System.Text;

namespace SecureChannels.Protocol.Policy;

internal enum TokenKind : byte
{
    End,
    Name,
    String,
    Integer,
    True,
    False,
    In,
    Has,
    OpenParen,
    CloseParen,
    OpenBracket,
    CloseBracket,
    Comma,
    Not,
    And,
    Or,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

internal readonly struct Token
{
    public Token(TokenKind kind, int position, int length, string? value = null, long integer = 0)
    {
        Kind = kind;
        Position = position;
        Length = length;
        Value = value;
        Integer = integer;
    }

    public TokenKind Kind { get; }

    public int Position { get; }

    public int Length { get; }

    /// <summary>The name, or the string literal's content after unescaping.</summary>
    public string? Value { get; }

    public long Integer { get; }
}

/// <summary>
/// Splits policy text into tokens on demand. Never reads past <see cref="AccessPolicy.MaxTextLength"/>: reaching
/// that point in a longer text is a <see cref="PolicyErrorCode.TooLong"/> error, so a hostile megabyte costs no
/// more than the limit.
/// </summary>
internal sealed class PolicyLexer
{
    // Longest excerpt of the text quoted in an error message, so messages stay readable for long tokens.
    private const int MaxQuotedLength = 32;

    private readonly string _text;
    private readonly int _end;
    private int _position;

    public PolicyLexer(string text)
    {
        _text = text;
        _end = Math.Min(text.Length, AccessPolicy.MaxTextLength);
    }

    public Token Next()
    {
        while (!AtEnd() && _text[_position] is ' ' or '\t' or '\r' or '\n')
        {
            _position++;
        }

        var start = _position;
        if (AtEnd())
        {
            return new Token(TokenKind.End, start, 0);
        }

        var c = _text[start];
        switch (c)
        {
            case '(':
                return Fixed(TokenKind.OpenParen, 1);
            case ')':
                return Fixed(TokenKind.CloseParen, 1);
            case '[':
                return Fixed(TokenKind.OpenBracket, 1);
            case ']':
                return Fixed(TokenKind.CloseBracket, 1);
            case ',':
                return Fixed(TokenKind.Comma, 1);
            case '!':
                return PeekAt(start + 1) == '=' ? Fixed(TokenKind.NotEqual, 2) : Fixed(TokenKind.Not, 1);
            case '<':
                return PeekAt(start + 1) == '=' ? Fixed(TokenKind.LessOrEqual, 2) : Fixed(TokenKind.Less, 1);
            case '>':
                return PeekAt(start + 1) == '=' ? Fixed(TokenKind.GreaterOrEqual, 2) : Fixed(TokenKind.Greater, 1);
            case '=':
                return PeekAt(start + 1) == '=' ? Fixed(TokenKind.Equal, 2) : throw Error(start, PolicyErrorCode.UnexpectedCharacter, "'=' is not an operator; equality is '=='");
            case '&':
                return PeekAt(start + 1) == '&' ? Fixed(TokenKind.And, 2) : throw Error(start, PolicyErrorCode.UnexpectedCharacter, "'&' is not an operator; conjunction is '&&'");
            case '|':
                return PeekAt(start + 1) == '|' ? Fixed(TokenKind.Or, 2) : throw Error(start, PolicyErrorCode.UnexpectedCharacter, "'|' is not an operator; disjunction is '||'");
            case '"':
                return ReadString();
            default:
                break;
        }

        if (char.IsAsciiDigit(c))
        {
            return ReadInteger();
        }

        if (char.IsLetter(c) || c == '_')
        {
            return ReadWord();
        }

        throw Error(start, PolicyErrorCode.UnexpectedCharacter, $"Unexpected character {Describe(c)}");
    }

    /// <summary>A human-readable rendering of a token for error messages.</summary>
    public string Describe(Token token)
    {
        if (token.Kind == TokenKind.End)
        {
            return "the end of the policy";
        }

        var length = Math.Min(token.Length, MaxQuotedLength);
        var excerpt = _text.Substring(token.Position, length);
        return token.Length > MaxQuotedLength ? $"'{excerpt}...'" : $"'{excerpt}'";
    }

    public PolicySyntaxException Error(int position, PolicyErrorCode code, string message) =>
        PolicySyntaxException.At(_text, position, code, message);

    private static string Describe(char c) =>
        char.IsControl(c) || char.IsWhiteSpace(c) || char.IsSurrogate(c)
            ? $"U+{(int)c:X4}"
            : $"'{c}' (U+{(int)c:X4})";

    private static bool IsWordCharacter(char c) => char.IsLetterOrDigit(c) || c is '_' or '.' or '-';

    /// <summary>True at the end of the text; throws TooLong instead when the text goes on past the limit.</summary>
    private bool AtEnd() => AtEnd(_position);

    private bool AtEnd(int index)
    {
        if (index < _end)
        {
            return false;
        }

        if (_text.Length > _end)
        {
            throw Error(_end, PolicyErrorCode.TooLong, $"The policy is longer than {AccessPolicy.MaxTextLength} characters");
        }

        return true;
    }

    /// <summary>The character at <paramref name="index"/>, or NUL at the end (NUL never continues a token).</summary>
    private char PeekAt(int index) => AtEnd(index) ? '\0' : _text[index];

    private Token Fixed(TokenKind kind, int length)
    {
        var start = _position;
        _position += length;
        return new Token(kind, start, length);
    }

    private Token ReadString()
    {
        var start = _position;
        _position++;

        // Only allocate a builder when there is an escape to undo.
        StringBuilder? builder = null;
        var runStart = _position;
        while (true)
        {
            if (AtEnd())
            {
                throw Error(start, PolicyErrorCode.UnterminatedString, "String has no closing quote");
            }

            var c = _text[_position];
            if (c == '"')
            {
                break;
            }

            if (c is '\n' or '\r')
            {
                throw Error(start, PolicyErrorCode.UnterminatedString, "String has no closing quote on its line");
            }

            if (c == '\\')
            {
                var escaped = PeekAt(_position + 1);
                if (escaped == '\0' && AtEnd(_position + 1))
                {
                    throw Error(start, PolicyErrorCode.UnterminatedString, "String has no closing quote");
                }

                if (escaped is not ('"' or '\\'))
                {
                    throw Error(_position, PolicyErrorCode.UnexpectedCharacter, $"Invalid escape: a backslash followed by {Describe(escaped)}; only \\\" and \\\\ are escapes");
                }

                builder ??= new StringBuilder();
                builder.Append(_text, runStart, _position - runStart).Append(escaped);
                _position += 2;
                runStart = _position;
                continue;
            }

            if (char.IsControl(c))
            {
                throw Error(_position, PolicyErrorCode.UnexpectedCharacter, $"Control character {Describe(c)} in a string");
            }

            _position++;
        }

        var value = builder is null
            ? _text.Substring(runStart, _position - runStart)
            : builder.Append(_text, runStart, _position - runStart).ToString();
        _position++;
        return new Token(TokenKind.String, start, _position - start, value);
    }

    private Token ReadInteger()
    {
        var start = _position;
        long value = 0;
        while (!AtEnd() && char.IsAsciiDigit(_text[_position]))
        {
            var digit = _text[_position] - '0';
            if (value > (long.MaxValue - digit) / 10)
            {
                throw Error(start, PolicyErrorCode.IntegerOverflow, $"Integer literal is greater than {long.MaxValue.ToString(CultureInfo.InvariantCulture)}");
            }

            value = (value * 10) + digit;
            _position++;
        }

        return new Token(TokenKind.Integer, start, _position - start, integer: value);
    }

    private Token ReadWord()
    {
        var start = _position;

        // Take the whole word, including characters names may not contain, so 'Subject.Role' is one bad name
        // rather than a confusing error at its second letter.
        while (!AtEnd() && IsWordCharacter(_text[_position]))
        {
            _position++;
        }

        var word = _text.AsSpan(start, _position - start);
        var kind = word switch
        {
            "true" => TokenKind.True,
            "false" => TokenKind.False,
            "in" => TokenKind.In,
            "has" => TokenKind.Has,
            _ => TokenKind.Name,
        };
        if (kind != TokenKind.Name)
        {
            return new Token(kind, start, word.Length);
        }

        if (!PolicyName.IsValid(word))
        {
            var shown = word.Length > MaxQuotedLength ? $"{word[..MaxQuotedLength]}..." : word.ToString();
            throw Error(start, PolicyErrorCode.InvalidName, $"'{shown}' is not a valid name: names are lower-case dotted identifiers such as subject.role");
        }

        return new Token(TokenKind.Name, start, word.Length, word.ToString());
    }
}
