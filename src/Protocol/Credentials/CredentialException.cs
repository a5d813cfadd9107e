namespace SecureChannels.Protocol.Credentials;

/// <summary>Why a credential, chain or revocation list was rejected. Each kind has one documented meaning.</summary>
public enum CredentialErrorKind
{
    /// <summary>The bytes are not a valid canonical encoding (the wire or identity error is inside).</summary>
    Malformed = 1,

    /// <summary>The chain's root issuer is not a trusted authority.</summary>
    UntrustedIssuer,

    /// <summary>A signature does not verify, or names a key its issuer never had.</summary>
    BadSignature,

    /// <summary>A link was not issued by the subject of the link before it, or does not name its parent exactly.</summary>
    BrokenChain,

    /// <summary>A delegating issuer's identity history is missing from the presentation or does not verify.</summary>
    MissingIssuerHistory,

    /// <summary>A link is past its not-after time (beyond the allowed clock skew).</summary>
    Expired,

    /// <summary>A link is before its not-before time (beyond the allowed clock skew).</summary>
    NotYetValid,

    /// <summary>A link, its subject or its principal is revoked by the root authority's newest revocation list.</summary>
    Revoked,

    /// <summary>A delegated link grants more than its parent; <see cref="CredentialException.Widening"/> says how.</summary>
    Widened,

    /// <summary>The chain is longer than <see cref="CredentialLimits.MaxChainLength"/>.</summary>
    ChainTooLong,

    /// <summary>The chain's final subject is not the identity that presented it.</summary>
    SubjectMismatch,

    /// <summary>A delegated link carries no receipt from the root authority, and the verifier accepts only registered delegations.</summary>
    Unregistered,
}

/// <summary>How a delegated credential tried to grant more than its parent.</summary>
public enum WideningKind
{
    /// <summary>Not a widening error.</summary>
    None = 0,

    /// <summary>An attribute the parent does not have.</summary>
    AttributeAdded,

    /// <summary>A value outside the parent's set for that attribute.</summary>
    ValueOutsideParent,

    /// <summary>A not-after later than the parent's.</summary>
    LaterExpiry,

    /// <summary>A not-before earlier than the parent's.</summary>
    EarlierStart,

    /// <summary>A principal other than the parent's: a delegate acts for the same principal or not at all.</summary>
    DifferentPrincipal,

    /// <summary>The parent allows no further delegation, or the child allows as much as the parent.</summary>
    DelegationDepthExceeded,
}

/// <summary>A credential that must not be trusted, with the precise reason (local only; a peer gets a generic code).</summary>
public sealed class CredentialException : Exception
{
    /// <summary>Creates an error of the given kind.</summary>
    public CredentialException(CredentialErrorKind kind, string message, WideningKind widening = WideningKind.None)
        : base(message)
    {
        Kind = kind;
        Widening = widening;
    }

    /// <summary>Creates an error of the given kind with its cause.</summary>
    public CredentialException(CredentialErrorKind kind, string message, Exception innerException)
        : base(message, innerException)
    {
        Kind = kind;
    }

    /// <summary>Why the credential was rejected.</summary>
    public CredentialErrorKind Kind { get; }

    /// <summary>For <see cref="CredentialErrorKind.Widened"/>, how the link widened.</summary>
    public WideningKind Widening { get; }
}

/// <summary>The limits of credential structures, each with its reason.</summary>
public static class CredentialLimits
{
    /// <summary>Most links in a chain: an authority, an orchestrator and a few levels of sub-agents fit with room to spare; each link costs a signature check.</summary>
    public const int MaxChainLength = 8;

    /// <summary>Most attributes in one credential: authority should be a few named grants, not a database.</summary>
    public const int MaxAttributes = 64;

    /// <summary>Most values of one attribute.</summary>
    public const int MaxValuesPerAttribute = 64;

    /// <summary>Longest attribute name in bytes.</summary>
    public const int MaxAttributeNameLength = 64;

    /// <summary>Longest attribute value or principal id in bytes.</summary>
    public const int MaxValueLength = 256;

    /// <summary>Most bytes of one encoded signed credential: 64 × 64 values of 256 bytes would be far more, but real grants are small; this bounds a parser's work.</summary>
    public const int MaxCredentialLength = 32 * 1024;

    /// <summary>Most bytes of an encoded chain presentation: the credentials plus the delegating issuers' histories.</summary>
    public const int MaxChainPresentationLength = 256 * 1024;

    /// <summary>Most entries in one revocation list.</summary>
    public const int MaxRevocationEntries = 65536;

    /// <summary>Most bytes of one encoded revocation list.</summary>
    public const int MaxRevocationListLength = 4 * 1024 * 1024;

    /// <summary>Length of a credential id: 128 random bits never collide in practice.</summary>
    public const int CredentialIdLength = 16;
}
