namespace SecureChannels.Authority.Audit;

/// <summary>
/// A line of an exported audit log (JSON lines) that is not a record. The message names the line and the field,
/// never the line's content: an export may hold hostile text, and the message ends up in a terminal or a log.
/// </summary>
public sealed class AuditFormatException : Exception
{
    /// <summary>Creates the exception for line <paramref name="lineNumber"/> (1-based).</summary>
    public AuditFormatException(long lineNumber, string message)
        : base(Compose(lineNumber, message))
    {
        LineNumber = lineNumber;
    }

    /// <summary>Creates the exception for line <paramref name="lineNumber"/> (1-based) with its cause.</summary>
    public AuditFormatException(long lineNumber, string message, Exception innerException)
        : base(Compose(lineNumber, message), innerException)
    {
        LineNumber = lineNumber;
    }

    /// <summary>The 1-based number of the line that is not a record.</summary>
    public long LineNumber { get; }

    private static string Compose(long lineNumber, string message) => $"Line {lineNumber}: {message}";
}
