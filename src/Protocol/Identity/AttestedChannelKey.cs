using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Protocol.Identity;

/// <summary>
/// A Noise static key attested by an identity, replaced by a fresh one at half the attestation's lifetime, so
/// a channel never presents an attestation about to expire. Every long-running endpoint (relay, authority,
/// agent) needs exactly this. Thread-safe.
/// </summary>
/// <remarks>
/// Replaced keys are not disposed: a channel that opened with one holds its own transport keys, never the
/// static key, but an options object handed out a moment ago may still be about to handshake with it. They are
/// garbage after that; their memory is cleared when collected.
/// </remarks>
public sealed class AttestedChannelKey : IDisposable
{
    private readonly AgentIdentity _identity;
    private readonly TimeSpan _lifetime;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _renew = new(1, 1);
    private Held? _current;

    /// <summary>Creates the holder; the first key is made on first use.</summary>
    /// <param name="identity">The identity that attests.</param>
    /// <param name="lifetime">How long each attestation lasts (one day by default); the key is renewed at half of it.</param>
    /// <param name="time">The clock.</param>
    public AttestedChannelKey(AgentIdentity identity, TimeSpan? lifetime = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(identity);
        _identity = identity;
        _lifetime = lifetime ?? TimeSpan.FromDays(1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_lifetime, TimeSpan.Zero);
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The current key and its attestation, renewing them first when half the lifetime has passed.</summary>
    public async ValueTask<(DhKeyPair Key, SignedKeyAttestation Attestation)> GetAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _current) is { } held && _time.GetUtcNow() < held.RenewAt)
        {
            return (held.Key, held.Attestation);
        }

        await _renew.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_current is not { } current || _time.GetUtcNow() >= current.RenewAt)
            {
                var key = Curve25519Dh.Instance.GenerateKeyPair();
                var attestation = await _identity.AttestChannelKeyAsync(key.PublicKey.ToArray(), _lifetime, _time, cancellationToken).ConfigureAwait(false);
                _current = current = new Held(key, attestation, _time.GetUtcNow() + (_lifetime / 2));
            }

            return (current.Key, current.Attestation);
        }
        finally
        {
            _renew.Release();
        }
    }

    /// <summary>Disposes the current key.</summary>
    public void Dispose()
    {
        _current?.Key.Dispose();
        _renew.Dispose();
    }

    private sealed record Held(DhKeyPair Key, SignedKeyAttestation Attestation, DateTimeOffset RenewAt);
}
