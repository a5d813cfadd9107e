namespace SecureChannels.Protocol.Wire;

/// <summary>Why bytes could not be decoded. Each kind has one documented meaning.</summary>
public enum WireErrorKind
{
    /// <summary>The input ended before the structure did.</summary>
    Truncated = 1,

    /// <summary>The bytes are not the MessagePack structure expected (wrong type, wrong count, bad UTF-8).</summary>
    Malformed,

    /// <summary>The structure is valid but not in its one canonical encoding (e.g. a longer integer form, unsorted or duplicated keys).</summary>
    NonCanonical,

    /// <summary>The structure's version is not one this implementation knows.</summary>
    UnsupportedVersion,

    /// <summary>The input, or a field of it, exceeds a named limit.</summary>
    TooLarge,

    /// <summary>Bytes follow the end of the structure.</summary>
    TrailingBytes,
}

/// <summary>Bytes that are not a valid encoding. The message names the structure and field, never secret content.</summary>
public sealed class WireFormatException : Exception
{
    /// <summary>Creates an error of the given kind.</summary>
    public WireFormatException(WireErrorKind kind, string message)
        : base(message)
    {
        Kind = kind;
    }

    /// <summary>Creates an error of the given kind with its cause.</summary>
    public WireFormatException(WireErrorKind kind, string message, Exception innerException)
        : base(message, innerException)
    {
        Kind = kind;
    }

    /// <summary>What is wrong with the bytes.</summary>
    public WireErrorKind Kind { get; }
}
