using System.Collections.Immutable;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// Everything the handshake proved about the other side: who it is, on whose behalf it acts, with which
/// credentials (and their delegation hops), which attributes, and until when. It belongs to its channel, and
/// never changes: when the peer presents new credentials, the channel replaces it with a new one.
/// </summary>
public sealed class VerifiedPeer
{
    internal VerifiedPeer(VerifiedIdentity identity, ImmutableArray<CredentialChain> chains, ImmutableArray<VerifiedCredential> credentials, DateTimeOffset attestationExpiry)
    {
        Identity = identity;
        AttestationExpiry = attestationExpiry;
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

    // Kept apart from NotAfter so the peer can be rebuilt with new credentials and the same key attestation.
    private DateTimeOffset AttestationExpiry { get; }

    /// <summary>The same peer, with the same key attestation, presenting <paramref name="credentials"/> instead.</summary>
    internal VerifiedPeer WithCredentials(ImmutableArray<CredentialChain> chains, ImmutableArray<VerifiedCredential> credentials) =>
        new(Identity, chains, credentials, AttestationExpiry);

    /// <inheritdoc />
    public override string ToString() => $"{Identifier} for {Principal}";
}
