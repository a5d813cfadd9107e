namespace SecureChannels.Protocol.Authority;

/// <summary>The authority protocol's fixed limits (docs/protocol.md §10.5), each with its reason.</summary>
public static class AuthorityLimits
{
    /// <summary>Largest authority message: a revocation list at its limit plus the envelope. Bounds what either side buffers.</summary>
    public const int MaxMessageLength = Credentials.CredentialLimits.MaxRevocationListLength + 1024;

    /// <summary>Largest resource name of a policy document: short, printable, like a relay name with room for a path.</summary>
    public const int MaxResourceLength = 128;

    /// <summary>Largest reason text for a revocation or an audit entry.</summary>
    public const int MaxReasonLength = 512;

    /// <summary>Most records one registry query returns; a caller pages by narrowing the query.</summary>
    public const int MaxQueryResults = 10_000;

    /// <summary>Bytes of a ticket's secret: 256 bits, beyond guessing.</summary>
    public const int TicketSecretLength = 32;

    /// <summary>Bytes of a ticket's id: its public handle, so the store looks it up without the secret.</summary>
    public const int TicketIdLength = 16;

    /// <summary>Bytes of the authority tag in a ticket: tells a foreign ticket from an unknown one before any lookup.</summary>
    public const int TicketAuthorityTagLength = 8;
}
