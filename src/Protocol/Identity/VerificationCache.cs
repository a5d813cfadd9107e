using System.Collections.Concurrent;

namespace SecureChannels.Protocol.Identity;

/// <summary>
/// Remembers which identity histories, key attestations and credential chains verified, each by a hash of the exact
/// bytes its outcome depends on, so a peer seen before costs no Ed25519 verification (docs/protocol.md §8.2,
/// implementation note). Only what is a pure function of those bytes is skipped: the clock, revocation lists, trust
/// anchors, the binding to the Noise static key, the presenter and the policy are judged on every use.
/// </summary>
/// <remarks>
/// <para>
/// Only successes are remembered. A failure is never cached, as a failure or otherwise: a forged input costs its
/// sender a full verification every time, exactly as it costs us, and can never push out an entry by failing.
/// </para>
/// <para>
/// Bounded by <see cref="Capacity"/>, evicting with a clock: an entry hit since the hand last passed it gets a second
/// chance, so the peers that keep coming back stay while one-off entries go first. Thread-safe: a lookup takes no
/// lock and allocates nothing; adding (after a verification of tens of microseconds) takes one short lock.
/// </para>
/// <para>
/// A <c>CredentialVerifier</c> makes its own unless given one to share (<c>CredentialVerifierOptions.Cache</c>), and
/// the channel handshake uses the verifier's: share one verifier across channels and repeat peers are cheap.
/// </para>
/// </remarks>
public sealed class VerificationCache : IVerificationMemory
{
    /// <summary>
    /// Entries held by default: 4096. A peer takes about three (its identity history, key attestation and one chain;
    /// more with several chains or delegating issuers), so the last thousand or so peers of a busy relay or
    /// authority stay warm, in about 0.65 MiB (some 160 bytes an entry, all of it bookkeeping around a 32-byte key).
    /// </summary>
    public const int DefaultCapacity = 4096;

    /// <summary>Largest capacity accepted: 2^18 entries, about 40 MiB, bounds what a configuration mistake can hold.</summary>
    public const int MaxCapacity = 1 << 18;

    private readonly ConcurrentDictionary<VerificationKey, Entry> _entries = new();
    private readonly List<Entry> _clock = [];
    private readonly Lock _adding = new();
    private int _hand;
    private long _hits;
    private long _misses;

    /// <summary>Creates an empty cache of at most <paramref name="capacity"/> entries.</summary>
    /// <param name="capacity">Most entries held. Defaults to <see cref="DefaultCapacity"/>; 1 to <see cref="MaxCapacity"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is outside 1 to <see cref="MaxCapacity"/>.</exception>
    public VerificationCache(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, MaxCapacity);
        Capacity = capacity;
    }

    /// <summary>Most entries held.</summary>
    public int Capacity { get; }

    /// <summary>Entries held now (never above <see cref="Capacity"/>).</summary>
    public int Count
    {
        get
        {
            lock (_adding)
            {
                return _clock.Count;
            }
        }
    }

    /// <summary>Lookups that found the item verified before: each one an Ed25519 verification (or several) not made.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Lookups that did not: each one followed by a full verification.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    bool IVerificationMemory.Contains(in VerificationKey key) => Contains(key);

    void IVerificationMemory.Add(in VerificationKey key) => Add(key);

    /// <summary>True when <paramref name="key"/> verified before; counts a hit or a miss.</summary>
    internal bool Contains(in VerificationKey key)
    {
        if (_entries.TryGetValue(key, out var entry))
        {
            // A plain write: racing the clock at worst costs this entry its second chance, never a wrong answer.
            entry.Referenced = true;
            Interlocked.Increment(ref _hits);
            return true;
        }

        Interlocked.Increment(ref _misses);
        return false;
    }

    /// <summary>Remembers that <paramref name="key"/> verified. Call only after the whole verification succeeded.</summary>
    internal void Add(in VerificationKey key)
    {
        lock (_adding)
        {
            // Another handshake may have verified the same item meanwhile.
            if (_entries.ContainsKey(key))
            {
                return;
            }

            var entry = new Entry(key);
            if (_clock.Count < Capacity)
            {
                _clock.Add(entry);
            }
            else
            {
                var slot = NextVictim();
                _entries.TryRemove(_clock[slot].Key, out _);
                _clock[slot] = entry;
            }

            _entries[key] = entry;
        }
    }

    // The clock's hand passes entries hit since its last turn (clearing the mark) and stops at the first that was not.
    // Bounded by one turn even if lookups keep marking entries behind it.
    private int NextVictim()
    {
        for (var passed = 0; passed < _clock.Count && _clock[_hand].Referenced; passed++)
        {
            _clock[_hand].Referenced = false;
            _hand = (_hand + 1) % _clock.Count;
        }

        var victim = _hand;
        _hand = (_hand + 1) % _clock.Count;
        return victim;
    }

    // New entries start unmarked: an item verified once and never seen again is the first to go.
    private sealed class Entry(VerificationKey key)
    {
        public VerificationKey Key { get; } = key;

        public bool Referenced { get; set; }
    }
}
