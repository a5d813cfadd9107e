namespace SecureChannels.Protocol.Authority;

/// <summary>
/// Why the authority refused a request (docs/protocol.md §10.6). Stable numbers: they travel on the wire.
/// </summary>
public enum AuthorityErrorCode : ushort
{
    /// <summary>The request was malformed, non-canonical or of an unknown type.</summary>
    Malformed = 1,

    /// <summary>The caller's verified identity and credentials do not allow this request.</summary>
    Unauthorized = 2,

    /// <summary>No ticket with this id exists here.</summary>
    TicketUnknown = 3,

    /// <summary>The ticket was already used; a ticket works once.</summary>
    TicketUsed = 4,

    /// <summary>The ticket expired before it was presented.</summary>
    TicketExpired = 5,

    /// <summary>The ticket was made by another authority.</summary>
    TicketForeign = 6,

    /// <summary>The named credential is not in this authority's registry.</summary>
    CredentialUnknown = 7,

    /// <summary>The named credential (or one above it) is revoked.</summary>
    CredentialRevoked = 8,

    /// <summary>The presented credential chain does not verify (bad signature, widened, expired, foreign root).</summary>
    CredentialInvalid = 9,

    /// <summary>Too many requests of this kind right now; try again after a back-off.</summary>
    RateLimited = 10,

    /// <summary>The authority's store is unreachable; nothing was changed; try again after a back-off.</summary>
    Unavailable = 11,

    /// <summary>A value is outside its limit (a name, a lifetime, a list).</summary>
    OutOfRange = 12,

    /// <summary>The authority failed in a way it does not explain to callers; nothing was changed.</summary>
    Internal = 13,
}

/// <summary>A request the authority refused, with its code; or an authority that did not answer.</summary>
public sealed class AuthorityException : Exception
{
    /// <summary>Creates the exception.</summary>
    public AuthorityException(AuthorityErrorCode code, string message, Exception? inner = null)
        : base(message, inner) => Code = code;

    /// <summary>Creates an exception for an unexplained failure.</summary>
    public AuthorityException()
        : this(AuthorityErrorCode.Internal, "The authority failed.")
    {
    }

    /// <summary>Creates an exception for an unexplained failure with a message.</summary>
    public AuthorityException(string message)
        : this(AuthorityErrorCode.Internal, message)
    {
    }

    /// <summary>Creates an exception for an unexplained failure with a message and a cause.</summary>
    public AuthorityException(string message, Exception inner)
        : this(AuthorityErrorCode.Internal, message, inner)
    {
    }

    /// <summary>Why.</summary>
    public AuthorityErrorCode Code { get; }

    /// <summary>True when the same request may succeed later (after a back-off).</summary>
    public bool IsTransient => Code is AuthorityErrorCode.RateLimited or AuthorityErrorCode.Unavailable;
}
