using SecureChannels.Protocol.Identity;

namespace SecureChannels.Protocol.Tests.Identity;

/// <summary>
/// The bounded set of verified facts itself: its capacity limit, clock eviction, counters, thread safety, and keys
/// that separate kinds and parts.
/// </summary>
public sealed class VerificationCacheTests
{
    [Fact]
    public void CapacityDefaultsTo4096()
    {
        var cache = new VerificationCache();

        Assert.Equal(4096, VerificationCache.DefaultCapacity);
        Assert.Equal(VerificationCache.DefaultCapacity, cache.Capacity);
        Assert.Equal(0, cache.Count);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(VerificationCache.MaxCapacity + 1)]
    public void CapacityOutsideOneToTheMaximumThrows(int capacity) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new VerificationCache(capacity));

    [Theory]
    [InlineData(1)]
    [InlineData(VerificationCache.MaxCapacity)]
    public void CapacityWithinRangeIsKept(int capacity) => Assert.Equal(capacity, new VerificationCache(capacity).Capacity);

    [Fact]
    public void NeverHoldsMoreThanItsCapacity()
    {
        var cache = new VerificationCache(3);

        for (var i = 0; i < 10; i++)
        {
            cache.Add(Key(i));
            Assert.Equal(Math.Min(i + 1, 3), cache.Count);
        }

        Assert.Equal(3, Enumerable.Range(0, 10).Count(i => cache.Contains(Key(i))));
    }

    [Fact]
    public void AtTheBoundTheEntryNotHitSinceTheHandPassedIsEvictedFirst()
    {
        var cache = new VerificationCache(3);
        cache.Add(Key(0));
        cache.Add(Key(1));
        cache.Add(Key(2));
        Assert.True(cache.Contains(Key(0)));

        cache.Add(Key(3));

        // Key 0 was hit, so it had a second chance; key 1 was the first entry not hit.
        Assert.Equal(3, cache.Count);
        Assert.True(cache.Contains(Key(0)));
        Assert.False(cache.Contains(Key(1)));
        Assert.True(cache.Contains(Key(2)));
        Assert.True(cache.Contains(Key(3)));
    }

    [Fact]
    public void EveryLookupIsOneHitOrOneMiss()
    {
        var cache = new VerificationCache();

        Assert.False(cache.Contains(Key(1)));
        cache.Add(Key(1));
        cache.Add(Key(1));
        Assert.True(cache.Contains(Key(1)));
        Assert.True(cache.Contains(Key(1)));
        Assert.False(cache.Contains(Key(2)));

        Assert.Equal(2, cache.Hits);
        Assert.Equal(2, cache.Misses);
        Assert.Equal(1, cache.Count);
    }

    [Fact]
    public async Task ConcurrentLookupsAndAddsStayWithinTheBoundAndCountEveryLookup()
    {
        const int Workers = 8;
        const int Operations = 2000;
        var cache = new VerificationCache(16);
        var keys = Enumerable.Range(0, 64).Select(Key).ToArray();
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var workers = Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            await start.Task;
            for (var i = 0; i < Operations; i++)
            {
                // A few hot keys and many cold ones, as repeat peers among one-off ones.
                var key = keys[i % 3 == 0 ? (i + w) % 64 : i % 4];
                if (!cache.Contains(key))
                {
                    cache.Add(key);
                }
            }
        })).ToArray();
        start.SetResult();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(16, cache.Count);
        Assert.Equal(Workers * Operations, cache.Hits + cache.Misses);
        Assert.Equal(16, keys.Count(k => cache.Contains(k)));
    }

    [Fact]
    public void KeysSeparateKindsAndParts()
    {
        byte[] bytes = [1, 2, 3];

        Assert.Equal(VerificationKey.Derive(VerifiedKind.IdentityHistory, bytes), VerificationKey.Derive(VerifiedKind.IdentityHistory, [1, 2, 3]));
        Assert.NotEqual(VerificationKey.Derive(VerifiedKind.IdentityHistory, bytes), VerificationKey.Derive(VerifiedKind.KeyAttestation, bytes));
        Assert.NotEqual(VerificationKey.Derive(VerifiedKind.CredentialChain, [1, 2], [3]), VerificationKey.Derive(VerifiedKind.CredentialChain, [1], [2, 3]));
        Assert.NotEqual(VerificationKey.Derive(VerifiedKind.CredentialChain, bytes, [], [4]), VerificationKey.Derive(VerifiedKind.CredentialChain, bytes, [4], []));
    }

    private static VerificationKey Key(int i) => VerificationKey.Derive(VerifiedKind.IdentityHistory, BitConverter.GetBytes(i));
}
