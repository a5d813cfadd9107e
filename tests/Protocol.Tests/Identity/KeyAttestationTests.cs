using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;
using static SecureChannels.Protocol.Tests.Identity.IdentityTestKit;

namespace SecureChannels.Protocol.Tests.Identity;

/// <summary>Attestations binding a Noise static key to an identity: what verifies and every typed refusal.</summary>
public sealed class KeyAttestationTests
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(1);
    private static readonly TimeSpan Skew = TimeSpan.FromSeconds(60);

    private static byte[] NewChannelKey() => RandomNumberGenerator.GetBytes(KeyAttestation.ChannelKeyLength);

    private static IdentityException VerifyFails(SignedKeyAttestation attestation, VerifiedIdentity identity, byte[] channelKey, DateTimeOffset now, IdentityErrorKind expected, TimeSpan? skew = null)
    {
        var error = Assert.Throws<IdentityException>(() => attestation.Verify(identity, channelKey, now, skew ?? Skew));
        Assert.Equal(expected, error.Kind);
        return error;
    }

    [Fact]
    public async Task FreshAttestationVerifiesAndNamesTheCurrentChange()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();

        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);

        signed.Verify(identity.Verified, key, time.GetUtcNow(), Skew);
        Assert.Equal(identity.Identifier, signed.Attestation.Subject);
        Assert.Equal(identity.Verified.Current.ChangeHash, signed.Attestation.ChangeHash);
        Assert.Equal(key, signed.Attestation.ChannelPublicKey);
        Assert.Equal(Start, signed.Attestation.CreatedAt);
        Assert.Equal(Start + Lifetime, signed.Attestation.ExpiresAt);
    }

    [Fact]
    public async Task AttestationRoundTripsThroughItsCanonicalEncodingAndStillVerifies()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);

        var decoded = SignedKeyAttestation.Decode(signed.Encode());

        Assert.Equal(signed, decoded);
        Assert.Equal(signed.Encode(), decoded.Encode());
        Assert.Equal(signed.Attestation.Encoded, KeyAttestation.Decode(signed.Attestation.Encoded).Encoded);
        decoded.Verify(identity.Verified, key, time.GetUtcNow(), Skew);
    }

    [Fact]
    public async Task AttestationAfterItsExpiryPlusSkewIsRefusedAsExpired()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);

        time.Advance(Lifetime + Skew - TimeSpan.FromSeconds(1));
        signed.Verify(identity.Verified, key, time.GetUtcNow(), Skew);

        time.Advance(TimeSpan.FromSeconds(1));
        VerifyFails(signed, identity.Verified, key, time.GetUtcNow(), IdentityErrorKind.AttestationExpired);

        time.Advance(TimeSpan.FromDays(365));
        VerifyFails(signed, identity.Verified, key, time.GetUtcNow(), IdentityErrorKind.AttestationExpired);
    }

    [Fact]
    public async Task AttestationIsRefusedAtItsExactExpiryWhenThereIsNoSkew()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);

        signed.Verify(identity.Verified, key, Start + Lifetime - TimeSpan.FromSeconds(1), TimeSpan.Zero);
        VerifyFails(signed, identity.Verified, key, Start + Lifetime, IdentityErrorKind.AttestationExpired, TimeSpan.Zero);
    }

    [Fact]
    public async Task AttestationBeforeItsCreationMinusSkewIsRefusedAsNotYetValid()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);

        // A verifier whose clock is behind the attester's: within the skew it is accepted, beyond it refused.
        signed.Verify(identity.Verified, key, Start - Skew, Skew);
        var error = VerifyFails(signed, identity.Verified, key, Start - Skew - TimeSpan.FromSeconds(1), IdentityErrorKind.AttestationExpired);
        Assert.Contains("valid from", error.Message, StringComparison.Ordinal);
        VerifyFails(signed, identity.Verified, key, Start - TimeSpan.FromSeconds(1), IdentityErrorKind.AttestationExpired, TimeSpan.Zero);
    }

    [Fact]
    public async Task LargerClockSkewIsHonouredAtBothEnds()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);
        var skew = TimeSpan.FromMinutes(10);

        signed.Verify(identity.Verified, key, Start - skew, skew);
        signed.Verify(identity.Verified, key, Start + Lifetime + skew - TimeSpan.FromSeconds(1), skew);
        VerifyFails(signed, identity.Verified, key, Start - skew - TimeSpan.FromSeconds(1), IdentityErrorKind.AttestationExpired, skew);
        VerifyFails(signed, identity.Verified, key, Start + Lifetime + skew, IdentityErrorKind.AttestationExpired, skew);
    }

    [Fact]
    public async Task AttestationOfAnotherChannelKeyIsRefusedAsAttestationMismatch()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var signed = await identity.AttestChannelKeyAsync(NewChannelKey(), Lifetime, time);

        VerifyFails(signed, identity.Verified, NewChannelKey(), Start, IdentityErrorKind.AttestationMismatch);
        VerifyFails(signed, identity.Verified, FlipBit(signed.Attestation.ChannelPublicKey, 0), Start, IdentityErrorKind.AttestationMismatch);
        VerifyFails(signed, identity.Verified, signed.Attestation.ChannelPublicKey[..31], Start, IdentityErrorKind.AttestationMismatch);
    }

    [Fact]
    public async Task AttestationByAnotherIdentityIsRefusedAsIdentifierMismatch()
    {
        var time = NewClock();
        var attester = await NewIdentityAsync(time);
        var other = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await attester.AttestChannelKeyAsync(key, Lifetime, time);

        VerifyFails(signed, other.Verified, key, Start, IdentityErrorKind.IdentifierMismatch);
    }

    [Fact]
    public async Task AttestationClaimingAnotherIdentityButSignedByTheAttackerIsRefusedAsBadSignature()
    {
        var time = NewClock();
        var victim = await NewIdentityAsync(time);
        var attacker = NewSigner();
        var key = NewChannelKey();
        var forged = new KeyAttestation(victim.Identifier, victim.Verified.Current.ChangeHash, key, Start, Start + Lifetime);
        var signature = await SignatureDomain.SignAsync(attacker, SignatureDomain.KeyAttestation, forged.Encoded);

        VerifyFails(new SignedKeyAttestation(forged, signature), victim.Verified, key, Start, IdentityErrorKind.BadSignature);
    }

    [Fact]
    public async Task AttestationMadeBeforeARotationIsRefusedAsAttestationMismatch()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);

        var rotated = await identity.RotateAsync(NewSigner(), time);

        var error = VerifyFails(signed, rotated.Verified, key, Start, IdentityErrorKind.AttestationMismatch);
        Assert.Contains("rotated", error.Message, StringComparison.Ordinal);
        var fresh = await rotated.AttestChannelKeyAsync(key, Lifetime, time);
        fresh.Verify(rotated.Verified, key, Start, Skew);
    }

    [Fact]
    public async Task AttestationSignedWithTheOldKeyButNamingTheNewChangeIsRefusedAsBadSignature()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var rotated = await identity.RotateAsync(NewSigner(), time);
        var key = NewChannelKey();
        var attestation = new KeyAttestation(rotated.Identifier, rotated.Verified.Current.ChangeHash, key, Start, Start + Lifetime);
        var signature = await SignatureDomain.SignAsync(identity.Signer, SignatureDomain.KeyAttestation, attestation.Encoded);

        VerifyFails(new SignedKeyAttestation(attestation, signature), rotated.Verified, key, Start, IdentityErrorKind.BadSignature);
    }

    [Fact]
    public async Task AttestationWithAFlippedSignatureBitIsRefusedAsBadSignature()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);

        for (var index = 0; index < SignatureDomain.SignatureLength; index += 9)
        {
            VerifyFails(signed with { Signature = FlipBit(signed.Signature, index, index % 8) }, identity.Verified, key, Start, IdentityErrorKind.BadSignature);
        }

        VerifyFails(signed with { Signature = signed.Signature[..63] }, identity.Verified, key, Start, IdentityErrorKind.BadSignature);
    }

    [Fact]
    public async Task AttestationWithAlteredContentKeepingTheOldSignatureIsRefusedAsBadSignature()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var signed = await identity.AttestChannelKeyAsync(key, Lifetime, time);
        var a = signed.Attestation;

        var extended = new KeyAttestation(a.Subject, a.ChangeHash, a.ChannelPublicKey, a.CreatedAt, a.ExpiresAt.AddYears(1));

        VerifyFails(signed with { Attestation = extended }, identity.Verified, key, Start, IdentityErrorKind.BadSignature);
    }

    [Fact]
    public async Task AttestationSignedUnderAnotherDomainIsRefusedAsBadSignature()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var key = NewChannelKey();
        var attestation = new KeyAttestation(identity.Identifier, identity.Verified.Current.ChangeHash, key, Start, Start + Lifetime);
        var signature = await SignatureDomain.SignAsync(identity.Signer, SignatureDomain.IdentityChange, attestation.Encoded);

        VerifyFails(new SignedKeyAttestation(attestation, signature), identity.Verified, key, Start, IdentityErrorKind.BadSignature);
    }

    [Fact]
    public async Task AttestingRefusesANonPositiveLifetimeOrAKeyOfTheWrongLength()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => identity.AttestChannelKeyAsync(NewChannelKey(), TimeSpan.Zero, time));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => identity.AttestChannelKeyAsync(NewChannelKey(), TimeSpan.FromSeconds(-1), time));
        await Assert.ThrowsAsync<ArgumentException>(() => identity.AttestChannelKeyAsync(new byte[31], Lifetime, time));
    }

    [Fact]
    public async Task AttestationThatExpiresWithinTheSameSecondItStartsCannotBeMade()
    {
        var identity = await NewIdentityAsync(NewClock());

        Assert.Throws<ArgumentException>(() => new KeyAttestation(identity.Identifier, identity.Verified.Current.ChangeHash, NewChannelKey(), Start, Start));
        Assert.Throws<ArgumentException>(() => new KeyAttestation(default, identity.Verified.Current.ChangeHash, NewChannelKey(), Start, Start + Lifetime));
    }

    [Fact]
    public async Task TruncatedAttestationBytesAreRefusedAsMalformedAtEveryLength()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var encoded = (await identity.AttestChannelKeyAsync(NewChannelKey(), Lifetime, time)).Encode();

        for (var length = 0; length < encoded.Length; length++)
        {
            var error = Assert.Throws<IdentityException>(() => SignedKeyAttestation.Decode(encoded.AsMemory(0, length)));
            Assert.Equal(IdentityErrorKind.Malformed, error.Kind);
            Assert.Contains(WireKind(error), new[] { WireErrorKind.Truncated, WireErrorKind.Malformed });
        }
    }

    [Fact]
    public async Task AttestationVerifiesOnlyAtTheInstantsItCovers()
    {
        var identity = await NewIdentityAsync(NewClock());
        var key = NewChannelKey();
        var time = new FakeTimeProvider(Start);
        var signed = await identity.AttestChannelKeyAsync(key, TimeSpan.FromSeconds(10), time);

        for (var offset = -3; offset <= 13; offset++)
        {
            var now = Start.AddSeconds(offset);
            var valid = offset >= -2 && offset < 12;
            if (valid)
            {
                signed.Verify(identity.Verified, key, now, TimeSpan.FromSeconds(2));
            }
            else
            {
                VerifyFails(signed, identity.Verified, key, now, IdentityErrorKind.AttestationExpired, TimeSpan.FromSeconds(2));
            }
        }
    }
}
