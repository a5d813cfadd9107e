using System.Security.Cryptography;
using SecureChannels.Protocol.Identity;
using static SecureChannels.Protocol.Tests.Identity.IdentityTestKit;

namespace SecureChannels.Protocol.Tests.Identity;

/// <summary>
/// Identity histories and key attestations verified through a <see cref="VerificationCache"/>: the same bytes again
/// cost no signature verification, every other byte misses and is refused, and what depends on time or on the
/// channel key is judged every time.
/// </summary>
public sealed class CachedIdentityVerificationTests
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(1);
    private static readonly TimeSpan Skew = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AHistoryVerifiedBeforeIsNotVerifiedAgain()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 2);
        var cache = new VerificationCache();

        // Three changes: three own signatures and two by the previous key.
        Assert.Equal(5, CountVerifications(() => IdentityHistory.Decode(identity.History.Encoded).Verify(cache)));
        VerifiedIdentity? again = null;
        Assert.Equal(0, CountVerifications(() => again = IdentityHistory.Decode(identity.History.Encoded).Verify(cache)));

        Assert.Equal(identity.Identifier, again!.Identifier);
        Assert.Equal(identity.Verified.Current, again.Current);
        Assert.Equal((1, 1, 1), (cache.Hits, cache.Misses, cache.Count));
    }

    [Fact]
    public async Task EveryBitFlipOfACachedHistoryMissesAndIsRefused()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 1);
        var encoded = identity.History.Encoded;
        var cache = new VerificationCache();
        IdentityHistory.Decode(encoded).Verify(cache);

        for (var i = 0; i < encoded.Length; i++)
        {
            var tampered = FlipBit(encoded, i, bit: i % 8);
            Assert.ThrowsAny<IdentityException>(() => IdentityHistory.Decode(tampered).Verify(cache));
        }

        // Nothing tampered was remembered; the genuine history still hits.
        Assert.Equal(1, cache.Count);
        Assert.Equal(0, cache.Hits);
        Assert.Equal(0, CountVerifications(() => IdentityHistory.Decode(encoded).Verify(cache)));
    }

    [Fact]
    public async Task AHistoryThatFailsIsNotRememberedAndCostsAFullVerificationEveryTime()
    {
        var identity = await NewIdentityAsync(NewClock());
        var forged = new IdentityHistory([identity.History.Changes[0] with { Signature = FlipBit(identity.History.Changes[0].Signature, 3) }]);
        var cache = new VerificationCache();

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            Assert.Equal(1, CountVerifications(() => VerifyFails(forged, cache, IdentityErrorKind.BadSignature)));
            Assert.Equal(attempt, cache.Misses);
        }

        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public async Task AnAttestationVerifiedBeforeSkipsOnlyItsSignature()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);
        var cache = new VerificationCache();

        Assert.Equal(1, CountVerifications(() => Decode(signed).Verify(identity.Verified, key, time.GetUtcNow(), Skew, cache)));
        Assert.Equal(0, CountVerifications(() => Decode(signed).Verify(identity.Verified, key, time.GetUtcNow(), Skew, cache)));
        Assert.Equal((1, 1, 1), (cache.Hits, cache.Misses, cache.Count));
    }

    public static TheoryData<string> StillRefused =>
    [
        "another channel key",
        "expired",
        "not yet valid",
    ];

    [Theory]
    [MemberData(nameof(StillRefused))]
    public async Task ACachedAttestationIsStillRefusedForAnotherChannelKeyOrOutsideItsValidity(string wrong)
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);
        var cache = new VerificationCache();
        Decode(signed).Verify(identity.Verified, key, time.GetUtcNow(), Skew, cache);

        var (channelKey, now, expected) = wrong switch
        {
            "another channel key" => (NewChannelKey(), time.GetUtcNow(), IdentityErrorKind.AttestationMismatch),
            "expired" => (key, time.GetUtcNow() + Lifetime + Skew, IdentityErrorKind.AttestationExpired),
            _ => (key, time.GetUtcNow() - Skew - TimeSpan.FromSeconds(1), IdentityErrorKind.AttestationExpired),
        };

        // The signature is a hit, so no verification is made, and the refusal comes from the checks that remain.
        Assert.Equal(0, CountVerifications(() =>
        {
            var error = Assert.Throws<IdentityException>(() => Decode(signed).Verify(identity.Verified, channelKey, now, Skew, cache));
            Assert.Equal(expected, error.Kind);
        }));
        Assert.Equal(1, cache.Hits);
    }

    [Fact]
    public async Task ACachedAttestationIsRefusedOnceItsIdentityRotated()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);
        var cache = new VerificationCache();
        Decode(signed).Verify(identity.Verified, key, time.GetUtcNow(), Skew, cache);

        var rotated = await identity.RotateAsync(NewSigner(), time);

        var error = Assert.Throws<IdentityException>(() => Decode(signed).Verify(rotated.Verified, key, time.GetUtcNow(), Skew, cache));
        Assert.Equal(IdentityErrorKind.AttestationMismatch, error.Kind);
    }

    [Fact]
    public async Task EveryBitFlipOfACachedAttestationMissesAndIsRefused()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var encoded = (await identity.AttestChannelKeyAsync(key, Lifetime, time)).Encode();
        var cache = new VerificationCache();
        SignedKeyAttestation.Decode(encoded).Verify(identity.Verified, key, time.GetUtcNow(), Skew, cache);

        for (var i = 0; i < encoded.Length; i++)
        {
            var tampered = FlipBit(encoded, i, bit: i % 8);
            Assert.ThrowsAny<IdentityException>(() => SignedKeyAttestation.Decode(tampered).Verify(identity.Verified, key, time.GetUtcNow(), Skew, cache));
        }

        Assert.Equal(1, cache.Count);
        Assert.Equal(0, cache.Hits);
    }

    [Fact]
    public async Task AnAttestationRefusedForItsBindingIsNotRemembered()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);
        var cache = new VerificationCache();

        // Its signature held, but the verification as a whole failed: nothing is cached.
        Assert.Throws<IdentityException>(() => signed.Verify(identity.Verified, NewChannelKey(), time.GetUtcNow(), Skew, cache));

        Assert.Equal(0, cache.Count);
        Assert.Equal(1, CountVerifications(() => signed.Verify(identity.Verified, key, time.GetUtcNow(), Skew, cache)));
    }

    [Fact]
    public async Task ParallelVerificationsOfOneHistoryAndOneForgeryAgree()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 1);
        var encoded = identity.History.Encoded;
        var forged = FlipBit(encoded, encoded.Length - 1);
        var cache = new VerificationCache();
        var outcomes = new string[256];

        Parallel.For(0, outcomes.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            try
            {
                outcomes[i] = IdentityHistory.Decode(i % 4 == 3 ? forged : encoded).Verify(cache).Identifier.ToString();
            }
            catch (IdentityException e)
            {
                outcomes[i] = e.Kind.ToString();
            }
        });

        for (var i = 0; i < outcomes.Length; i++)
        {
            Assert.Equal(i % 4 == 3 ? nameof(IdentityErrorKind.BadSignature) : identity.Identifier.ToString(), outcomes[i]);
        }

        Assert.Equal(1, cache.Count);
        Assert.Equal(outcomes.Length, cache.Hits + cache.Misses);
        Assert.True(cache.Misses >= outcomes.Length / 4, "Every forgery is a miss.");
    }

    private static byte[] NewChannelKey() => RandomNumberGenerator.GetBytes(KeyAttestation.ChannelKeyLength);

    private static SignedKeyAttestation Decode(SignedKeyAttestation signed) => SignedKeyAttestation.Decode(signed.Encode());

    private static void VerifyFails(IdentityHistory history, VerificationCache cache, IdentityErrorKind expected)
    {
        var error = Assert.Throws<IdentityException>(() => history.Verify(cache));
        Assert.Equal(expected, error.Kind);
    }
}
