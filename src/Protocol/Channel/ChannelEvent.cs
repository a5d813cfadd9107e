using System.Collections.Immutable;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Protocol.Channel;

/// <summary>The kinds of audit event a channel emits.</summary>
public enum ChannelEventKind
{
    /// <summary>The handshake completed and both sides accepted each other.</summary>
    Opened,

    /// <summary>The handshake failed or a side refused the other.</summary>
    Denied,

    /// <summary>A direction switched to a new key.</summary>
    Rekeyed,

    /// <summary>The channel ended, gracefully or not.</summary>
    Closed,

    /// <summary>The peer presented new credentials, which verified and which the access policy allowed; they replace the old ones.</summary>
    CredentialsUpdated,
}

/// <summary>
/// One audit event. It names identities, principals, credential ids and the policy decision, never keys.
/// </summary>
/// <param name="Kind">What happened.</param>
/// <param name="Time">When, by the channel's clock.</param>
/// <param name="LocalIdentifier">This side.</param>
/// <param name="PeerIdentifier">The other side, when known.</param>
/// <param name="Principal">On whose behalf the peer acts, when known.</param>
/// <param name="CredentialIds">The ids of the peer's credentials, every link (the new ones for CredentialsUpdated).</param>
/// <param name="Code">The reason code for Denied and Closed.</param>
/// <param name="Detail">The precise local reason, or the policy text for Opened and CredentialsUpdated.</param>
public sealed record ChannelEvent(
    ChannelEventKind Kind,
    DateTimeOffset Time,
    Identifier LocalIdentifier,
    Identifier? PeerIdentifier,
    string? Principal,
    ImmutableArray<string> CredentialIds,
    ChannelErrorCode Code,
    string? Detail);
