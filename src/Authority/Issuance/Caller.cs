using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Authority.Issuance;

/// <summary>
/// Who asks the authority for something: a verified channel peer, or the local operator (the authority's own
/// identity, used by the CLI on the authority's data folder).
/// </summary>
/// <param name="Identifier">The caller's identifier.</param>
/// <param name="Peer">What the channel verified about the caller (credentials, attributes); null for the local operator.</param>
public sealed record Caller(Identifier Identifier, VerifiedPeer? Peer)
{
    /// <summary>The attribute whose values are the caller's roles at the authority.</summary>
    public const string RoleAttribute = "authority-role";

    /// <summary>The local operator: acts as the authority itself.</summary>
    public static Caller Operator(Identifier authority) => new(authority, null);

    /// <summary>True when the caller is the authority's own operator or holds <paramref name="role"/> (or admin).</summary>
    /// <remarks>
    /// Roles count only from credentials the authority issued directly (chain length 1): authority over the
    /// authority is not delegable, so a role never rests on a delegation the registry may not even know.
    /// </remarks>
    public bool Has(Identifier authority, string role) =>
        (Peer is null && Identifier == authority)
        || (Peer is not null && Peer.Credentials.Any(c => c.ChainLength == 1 && c.Authority == authority
            && c.Attributes.Entries.TryGetValue(RoleAttribute, out var roles) && (roles.Contains(role) || roles.Contains(AuthorityRoles.Admin))));

    /// <inheritdoc />
    public override string ToString() => Identifier.ToString();
}

/// <summary>The roles a credential can grant at the authority (values of <c>authority-role</c>).</summary>
public static class AuthorityRoles
{
    /// <summary>Everything: tickets, revocations, policies, queries.</summary>
    public const string Admin = "admin";

    /// <summary>Creates enrollment tickets (that do not grant roles).</summary>
    public const string Enroller = "enroller";

    /// <summary>Revokes any credential, subject or principal.</summary>
    public const string Revoker = "revoker";

    /// <summary>Queries the registry.</summary>
    public const string Auditor = "auditor";
}
