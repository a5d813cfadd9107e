namespace SecureChannels.Protocol.Noise;

/// <summary>What went wrong in a Noise operation. Each kind has one documented meaning.</summary>
/// <remarks>
/// Kinds and messages are for the local side only: an implementation must never put them on the wire,
/// because telling a peer *why* its message failed turns the error path into an oracle.
/// </remarks>
public enum NoiseErrorKind
{
    /// <summary>The protocol name is malformed or names an unknown pattern or modifier.</summary>
    InvalidProtocolName = 1,

    /// <summary>The protocol name is well formed but names a primitive this build does not provide (for example DH 448).</summary>
    UnsupportedPrimitive,

    /// <summary>A key or value the pattern needs was not supplied (for example a remote static key for IK).</summary>
    MissingPrerequisite,

    /// <summary>A key was set twice, or supplied where the pattern has no use for it.</summary>
    InvalidConfiguration,

    /// <summary>A key has the wrong length, or a DH produced the all-zero output of a low-order point.</summary>
    InvalidKey,

    /// <summary>The call does not fit the state: not this side's turn, handshake finished or aborted, or a one-way pattern's silent side tried to send.</summary>
    WrongState,

    /// <summary>The 64-bit nonce reached its reserved maximum; the key must not be used again.</summary>
    NonceExhausted,

    /// <summary>Authenticated decryption failed: the message was altered, truncated, or encrypted under another key or nonce.</summary>
    DecryptFailed,

    /// <summary>A message or payload would exceed the 65535-byte Noise limit.</summary>
    MessageTooLarge,

    /// <summary>A message is shorter than its pattern requires.</summary>
    MessageTooShort,

    /// <summary>The caller's output buffer cannot hold the result.</summary>
    BufferTooSmall,

    /// <summary>A stateless transport message carried a nonce that was already accepted or is older than the replay window.</summary>
    Replayed,

    /// <summary>A stateless transport was asked to send under a nonce at or below one it already used.</summary>
    NonceReused,
}

/// <summary>A Noise protocol error. <see cref="Kind"/> says what happened; the message never contains key material.</summary>
public sealed class NoiseException : Exception
{
    /// <summary>Creates an error of the given kind.</summary>
    public NoiseException(NoiseErrorKind kind, string message)
        : base(message)
    {
        Kind = kind;
    }

    /// <summary>Creates an error of the given kind with an inner cause.</summary>
    public NoiseException(NoiseErrorKind kind, string message, Exception innerException)
        : base(message, innerException)
    {
        Kind = kind;
    }

    /// <summary>What went wrong.</summary>
    public NoiseErrorKind Kind { get; }
}
