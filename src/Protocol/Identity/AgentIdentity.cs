using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Protocol.Identity;

/// <summary>
/// An identity this process controls: its verified history and the signer of its current key. Creating one
/// is one key generation and one signature; rotating appends a change signed by both the old and new keys.
/// </summary>
/// <remarks>The identity does not own its signers: whoever created them (a key store) disposes of them.</remarks>
public sealed class AgentIdentity
{
    private AgentIdentity(VerifiedIdentity verified, ISigner signer)
    {
        Verified = verified;
        Signer = signer;
    }

    /// <summary>The verified history and identifier.</summary>
    public VerifiedIdentity Verified { get; }

    /// <summary>The stable identifier.</summary>
    public Identifier Identifier => Verified.Identifier;

    /// <summary>The history to present to others.</summary>
    public IdentityHistory History => Verified.History;

    /// <summary>The signer of the current key.</summary>
    public ISigner Signer { get; }

    /// <summary>Creates a new identity whose first key is <paramref name="signer"/>'s.</summary>
    public static async Task<AgentIdentity> CreateAsync(ISigner signer, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(signer);
        ArgumentNullException.ThrowIfNull(timeProvider);
        var change = new IdentityChange(null, signer.PublicKey, timeProvider.GetUtcNow());
        var signature = await SignatureDomain.SignAsync(signer, SignatureDomain.IdentityChange, change.Encoded, cancellationToken).ConfigureAwait(false);
        var history = new IdentityHistory([new SignedIdentityChange(change, signature, null)]);
        return new AgentIdentity(history.Verify(), signer);
    }

    /// <summary>Loads an identity from its history and the signer of its current key.</summary>
    /// <exception cref="IdentityException">The history does not verify, or its current key is not the signer's.</exception>
    public static AgentIdentity Load(IdentityHistory history, ISigner signer)
    {
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(signer);
        var verified = history.Verify();
        if (!verified.PublicKey.SequenceEqual(signer.PublicKey.Span))
        {
            throw new IdentityException(IdentityErrorKind.IdentifierMismatch, $"The signer's key is not the current key of {verified.Identifier}.");
        }

        return new AgentIdentity(verified, signer);
    }

    /// <summary>
    /// Rotates to <paramref name="nextSigner"/>'s key: the new change links to the current one and is signed
    /// by both keys. The identifier stays the same. Returns the rotated identity; this one is then stale.
    /// </summary>
    public async Task<AgentIdentity> RotateAsync(ISigner nextSigner, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(nextSigner);
        ArgumentNullException.ThrowIfNull(timeProvider);
        var current = Verified.Current;
        var now = timeProvider.GetUtcNow();
        var change = new IdentityChange(current.ChangeHash, nextSigner.PublicKey, now < current.CreatedAt ? current.CreatedAt : now);
        var signature = await SignatureDomain.SignAsync(nextSigner, SignatureDomain.IdentityChange, change.Encoded, cancellationToken).ConfigureAwait(false);
        var previousSignature = await SignatureDomain.SignAsync(Signer, SignatureDomain.IdentityChange, change.Encoded, cancellationToken).ConfigureAwait(false);
        var history = new IdentityHistory([.. History.Changes, new SignedIdentityChange(change, signature, previousSignature)]);
        return new AgentIdentity(history.Verify(), nextSigner);
    }

    /// <summary>
    /// Attests that <paramref name="channelPublicKey"/> (an X25519 key used as a Noise static key) belongs to
    /// this identity until <paramref name="lifetime"/> from now.
    /// </summary>
    public async Task<SignedKeyAttestation> AttestChannelKeyAsync(ReadOnlyMemory<byte> channelPublicKey, TimeSpan lifetime, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lifetime, TimeSpan.Zero);
        var now = timeProvider.GetUtcNow();
        var attestation = new KeyAttestation(Identifier, Verified.Current.ChangeHash, channelPublicKey, now, now + lifetime);
        var signature = await SignatureDomain.SignAsync(Signer, SignatureDomain.KeyAttestation, attestation.Encoded, cancellationToken).ConfigureAwait(false);
        return new SignedKeyAttestation(attestation, signature);
    }

    /// <inheritdoc />
    public override string ToString() => Identifier.ToString();
}
