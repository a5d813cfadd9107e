using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Identity;

/// <summary>Why an identity history or key attestation was rejected. Each kind has one documented meaning.</summary>
public enum IdentityErrorKind
{
    /// <summary>The bytes are not a valid encoding; <see cref="Exception.InnerException"/> is the <see cref="WireFormatException"/>.</summary>
    Malformed = 1,

    /// <summary>The history has no change.</summary>
    Empty,

    /// <summary>A signature does not verify under the key that must have made it.</summary>
    BadSignature,

    /// <summary>A change does not link to the one before it (reordered, spliced, or a first change that claims a predecessor).</summary>
    BrokenChain,

    /// <summary>A change is dated before the one it follows.</summary>
    NonMonotonicTime,

    /// <summary>The history is longer than <see cref="IdentityLimits.MaxChanges"/>.</summary>
    TooLong,

    /// <summary>Two histories of one identifier diverge: someone signed two different successors of the same change.</summary>
    Forked,

    /// <summary>A history is a prefix of one already known: an old or truncated copy, which must not replace the newer one.</summary>
    Stale,

    /// <summary>The history belongs to a different identifier than the one expected.</summary>
    IdentifierMismatch,

    /// <summary>An attestation has expired, or is not valid yet.</summary>
    AttestationExpired,

    /// <summary>An attestation binds a different key than the one presented, or was signed by a key the identity has since rotated away.</summary>
    AttestationMismatch,
}

/// <summary>An identity history or attestation that must not be trusted. The message names the change, never key material.</summary>
public sealed class IdentityException : Exception
{
    /// <summary>Creates an error of the given kind.</summary>
    public IdentityException(IdentityErrorKind kind, string message)
        : base(message)
    {
        Kind = kind;
    }

    /// <summary>Creates an error of the given kind with its cause.</summary>
    public IdentityException(IdentityErrorKind kind, string message, Exception innerException)
        : base(message, innerException)
    {
        Kind = kind;
    }

    /// <summary>Why the input was rejected.</summary>
    public IdentityErrorKind Kind { get; }
}

/// <summary>The limits of identity structures, each with its reason.</summary>
public static class IdentityLimits
{
    /// <summary>
    /// Most changes in one history: 256. Rotation is rare (a key a month for twenty years is 240), and the cap
    /// bounds what a verifier spends on one history to a few milliseconds.
    /// </summary>
    public const int MaxChanges = 256;

    /// <summary>Most bytes of an encoded history: every change is under 200 bytes, so 256 fit in 64 KiB.</summary>
    public const int MaxHistoryLength = 64 * 1024;

    /// <summary>Most bytes of one encoded change or attestation, signed wrapper included.</summary>
    public const int MaxSignedStructureLength = 512;
}
