namespace SecureChannels.Protocol.Identity;

/// <summary>Where a verification looks up, and remembers, what verified before: a <see cref="VerificationCache"/>, or a <see cref="DeferredVerifications"/> in front of one.</summary>
internal interface IVerificationMemory
{
    /// <summary>True when <paramref name="key"/> verified before.</summary>
    bool Contains(in VerificationKey key);

    /// <summary>Remembers that <paramref name="key"/> verified.</summary>
    void Add(in VerificationKey key);
}

/// <summary>
/// Holds back what a handshake verified until the handshake accepts the peer, then remembers it in the cache. Anyone
/// can make an identity and a key attestation that verify; if those were remembered before the credentials and the
/// policy were judged, a stream of strangers, each refused, would push out the peers that keep coming back. (Chains
/// verify only under a trusted anchor, but a refused peer leaves nothing behind either way.)
/// </summary>
internal sealed class DeferredVerifications(VerificationCache cache) : IVerificationMemory
{
    // A handshake verifies one identity history, one key attestation and a few chains this way.
    private readonly List<VerificationKey> _held = new(2);

    public bool Contains(in VerificationKey key) => cache.Contains(key);

    public void Add(in VerificationKey key) => _held.Add(key);

    /// <summary>The peer was accepted: what it proved is remembered.</summary>
    public void Commit()
    {
        foreach (var key in _held)
        {
            cache.Add(key);
        }

        _held.Clear();
    }
}
