using System.Collections.Immutable;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// Everything the handshake proved about the other side: who it is, on whose behalf it acts, with which
/// credentials (and their delegation hops), which attributes, and until when. It belongs to its channel.
/// </summary>
public sealed class VerifiedPeer
{
    internal VerifiedPeer(VerifiedIdentity identity, ImmutableArray<CredentialChain> chains, ImmutableArray<VerifiedCredential> credentials, DateTimeOffset attestationExpiry)
    {
        Identity = identity;
        Chains = chains;
        Credentials = credentials;
        Principal = credentials.IsEmpty ? Principal.Self : credentials[0].Principal;
        Attributes = AttributeSet.Create(credentials
            .SelectMany(c => c.Attributes.Entries)
            .GroupBy(a => a.Key, StringComparer.Ordinal)
            .Select(g => KeyValuePair.Create(g.Key, g.SelectMany(a => a.Value))));
        NotAfter = credentials.Select(c => c.NotAfter).Append(attestationExpiry).Min();
    }

    /// <summary>The peer's verified identity.</summary>
    public VerifiedIdentity Identity { get; }

    /// <summary>The peer's stable identifier.</summary>
    public Identifier Identifier => Identity.Identifier;

    /// <summary>On whose behalf the peer acts (<see cref="Principal.Self"/> without credentials).</summary>
    public Principal Principal { get; }

    /// <summary>The verified credentials, with their hops.</summary>
    public ImmutableArray<VerifiedCredential> Credentials { get; }

    /// <summary>The effective attributes: the union over the peer's verified credentials.</summary>
    public AttributeSet Attributes { get; }

    /// <summary>When the first of the peer's credentials (or its key attestation) expires.</summary>
    public DateTimeOffset NotAfter { get; }

    /// <summary>The longest delegation chain among the credentials (0 without credentials).</summary>
    public int ChainLength => Credentials.IsEmpty ? 0 : Credentials.Max(c => c.ChainLength);

    internal ImmutableArray<CredentialChain> Chains { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Identifier} for {Principal}";
}
