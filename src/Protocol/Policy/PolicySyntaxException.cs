namespace SecureChannels.Protocol.Policy;

/// <summary>
/// Why a policy text was rejected. Each code has one meaning; the Policy README has an example of each. Errors
/// are reported at the first position, in reading order, where the text stops being the start of a valid policy.
/// </summary>
public enum PolicyErrorCode
{
    /// <summary>
    /// A character no token starts with (for example <c>#</c>, <c>-</c>, a lone <c>&amp;</c>, <c>|</c> or <c>=</c>),
    /// a control character inside a string, or a backslash escape other than <c>\"</c> and <c>\\</c> (reported
    /// at the backslash).
    /// </summary>
    UnexpectedCharacter = 1,

    /// <summary>A string has no closing quote before the end of its line or of the text; reported at the opening quote.</summary>
    UnterminatedString,

    /// <summary>A well-formed token where the grammar does not allow it (for example <c>a == == 1</c>, or a <c>)</c> too many).</summary>
    UnexpectedToken,

    /// <summary>The text ends where the grammar needs more, including empty or all-whitespace text; reported at the end.</summary>
    UnexpectedEnd,

    /// <summary>
    /// The text is longer than <see cref="AccessPolicy.MaxTextLength"/> (reported at that position; nothing past it
    /// is read) or a list has more than <see cref="AccessPolicy.MaxListLength"/> items (reported at the first extra item).
    /// </summary>
    TooLong,

    /// <summary>Parentheses and <c>!</c> nest deeper than <see cref="AccessPolicy.MaxNestingDepth"/>; reported at the one too many.</summary>
    TooDeep,

    /// <summary>
    /// A literal whose type can never fit where it stands: literals of different types compared, an ordering with a
    /// non-integer literal, a list mixing strings and integers, a non-boolean literal used as a condition, and so on.
    /// Reported at the offending literal.
    /// </summary>
    TypeMismatch,

    /// <summary>A word that is neither a keyword nor a valid name (for example <c>Subject.role</c> or <c>subject.</c>); reported at its start.</summary>
    InvalidName,

    /// <summary>An integer literal greater than <see cref="long.MaxValue"/>; reported at its first digit.</summary>
    IntegerOverflow,
}

/// <summary>A policy text was rejected. <see cref="Code"/> says why and <see cref="Position"/> says where.</summary>
public sealed class PolicySyntaxException : Exception
{
    /// <summary>Creates an error; the line and column are appended to <paramref name="message"/>.</summary>
    /// <param name="code">What went wrong.</param>
    /// <param name="message">A description for a human, without the location.</param>
    /// <param name="position">Zero-based character offset into the policy text.</param>
    /// <param name="line">One-based line.</param>
    /// <param name="column">One-based column, in UTF-16 code units from the start of the line.</param>
    public PolicySyntaxException(PolicyErrorCode code, string message, int position, int line, int column)
        : base($"{message} (line {line}, column {column}).")
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfLessThan(line, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(column, 1);
        Code = code;
        Position = position;
        Line = line;
        Column = column;
    }

    /// <summary>What went wrong.</summary>
    public PolicyErrorCode Code { get; }

    /// <summary>Zero-based character offset into the policy text; equal to the text's length for <see cref="PolicyErrorCode.UnexpectedEnd"/>.</summary>
    public int Position { get; }

    /// <summary>One-based line. Line breaks are LF, CR LF and a lone CR.</summary>
    public int Line { get; }

    /// <summary>One-based column, counted in UTF-16 code units from the start of <see cref="Line"/>.</summary>
    public int Column { get; }

    /// <summary>An error at <paramref name="position"/> of <paramref name="text"/>, with its line and column worked out.</summary>
    internal static PolicySyntaxException At(string text, int position, PolicyErrorCode code, string message)
    {
        var line = 1;
        var lineStart = 0;
        var end = Math.Min(position, text.Length);
        for (var i = 0; i < end; i++)
        {
            var c = text[i];
            if (c == '\n' || (c == '\r' && (i + 1 >= text.Length || text[i + 1] != '\n')))
            {
                line++;
                lineStart = i + 1;
            }
        }

        return new PolicySyntaxException(code, message, position, line, position - lineStart + 1);
    }
}
