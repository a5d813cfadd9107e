using System.Collections.Immutable;

namespace SecureChannels.Protocol.Credentials;

/// <summary>
/// The newest version of each of a set of signed, versioned documents (revocation lists by authority, policy
/// documents by resource): a higher version replaces the one held, a lower one never does, and the same version
/// with other content is an equivocation. Lock-free; readers see a consistent snapshot.
/// </summary>
internal sealed class NewestVersions<TKey, TDocument>(IEqualityComparer<TKey>? comparer = null)
    where TKey : notnull
    where TDocument : class
{
    private ImmutableDictionary<TKey, TDocument> _held = ImmutableDictionary.Create<TKey, TDocument>(comparer);

    public ImmutableDictionary<TKey, TDocument> Snapshot => _held;

    /// <summary>Keeps <paramref name="document"/> if its version is above the one held for <paramref name="key"/>.</summary>
    public RevocationMergeResult Merge(TKey key, TDocument document, Func<TDocument, ulong> version, Func<TDocument, TDocument, bool> sameContent)
    {
        while (true)
        {
            var current = _held;
            if (current.TryGetValue(key, out var held))
            {
                var (offered, holding) = (version(document), version(held));
                if (offered < holding)
                {
                    return RevocationMergeResult.Stale;
                }

                if (offered == holding)
                {
                    return sameContent(document, held) ? RevocationMergeResult.AlreadyKnown : RevocationMergeResult.Equivocation;
                }
            }

            if (Interlocked.CompareExchange(ref _held, current.SetItem(key, document), current) == current)
            {
                return RevocationMergeResult.Accepted;
            }
        }
    }

    public TDocument? Find(TKey key) => _held.GetValueOrDefault(key);
}
