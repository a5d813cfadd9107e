using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Fuzz.Tests;

/// <summary>
/// The fixed cast must be genuine: a target whose honest inputs already fail would fuzz only the error paths. These
/// check that the seeds' material verifies, and that the seeds themselves run through their targets.
/// </summary>
public sealed class FixtureTests
{
    [Fact]
    public void BobsDelegatedChainVerifiesAgainstTheFixedAuthority()
    {
        var verified = FuzzWorld.NewVerifier().Verify(FuzzWorld.BobChain, FuzzWorld.Bob.Identifier);
        Assert.Equal(2, verified.ChainLength);
        Assert.Equal(FuzzWorld.Authority.Identifier, verified.Authority);
    }

    [Fact]
    public void AlicesAttestationVerifiesForHerChannelKeyAtTheFixedInstant() =>
        FuzzWorld.AliceAttestation.Verify(FuzzWorld.Alice.Verified, FuzzWorld.AliceChannelKey.PublicKey, FuzzWorld.Now, TimeSpan.Zero);

    private const string PinnedAuthority = "I457301321aa6d4e55b64346decfc353dd1a1255ef101a6217adb6fa87bb6ff30";

    [Fact]
    public void TheCastIsTheSameInEveryProcess()
    {
        // Fixed seeds, a frozen clock and deterministic Ed25519: the authority's identifier is a constant, so a kept input
        // means the same in every process. If the cast changes on purpose, the corpora must be regenerated with it.
        var authority = FuzzWorld.Authority.Identifier.ToString();
        Assert.True(authority == PinnedAuthority, $"The fixed authority is now {authority}, not {PinnedAuthority}.");
        Assert.Equal(FuzzWorld.Authority.History.Encoded, Protocol.Identity.IdentityHistory.Decode(FuzzWorld.Authority.History.Encoded).Encoded);
        Assert.Equal(CredentialChain.Decode(FuzzWorld.BobChain.Encoded).Encoded, FuzzWorld.BobChain.Encoded);
    }

    public static TheoryData<string> Targets => CorpusReplayTests.Targets;

    [Theory]
    [MemberData(nameof(Targets))]
    public void SeedsRunThroughTheirTarget(string name)
    {
        var target = FuzzTargets.Find(name)!;
        var seeds = target.Seeds().ToList();
        Assert.NotEmpty(seeds);
        foreach (var seed in seeds)
        {
            target.Run(seed);
        }
    }
}
