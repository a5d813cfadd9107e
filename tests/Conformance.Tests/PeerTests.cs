using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Conformance.Tests;

/// <summary>
/// The conformance peer contract (docs/protocol.md, "Conformance peer"), driven through real processes over
/// loopback: ours against ours, and ours against an independent implementation (dissononce) in both roles.
/// </summary>
public sealed class PeerTests
{
    private static readonly byte[] InitiatorStatic = Enumerable.Repeat((byte)0x11, 32).ToArray();
    private static readonly byte[] ResponderStatic = Enumerable.Repeat((byte)0x22, 32).ToArray();
    private const string Prologue = "7365637572656368616e6e656c73";

    public static TheoryData<string, int> Protocols() => new()
    {
        { "Noise_XX_25519_ChaChaPoly_BLAKE2b", 64 },
        { "Noise_XX_25519_AESGCM_SHA256", 1 },
        { "Noise_IK_25519_ChaChaPoly_SHA256", 64 },
        { "Noise_IK_25519_AESGCM_BLAKE2b", 300 },
        { "Noise_NK_25519_ChaChaPoly_BLAKE2b", 64 },
        { "Noise_NK_25519_AESGCM_SHA256", 0 },
        { "Noise_KK_25519_ChaChaPoly_BLAKE2b", 64 },
        { "Noise_KK_25519_AESGCM_SHA512", 64 },
        { "Noise_NN_25519_ChaChaPoly_SHA256", 64 },
        { "Noise_NN_25519_AESGCM_BLAKE2b", NoiseConstants.MaxTransportPayloadLength },
        { "Noise_XXpsk3_25519_ChaChaPoly_SHA256", 64 },
        { "Noise_NNpsk0+psk2_25519_AESGCM_BLAKE2b", 64 },
        { "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", 64 },
        { "Noise_X1K1_25519_ChaChaPoly_SHA256", 64 },
        { "Noise_N_25519_ChaChaPoly_BLAKE2b", 64 },
        { "Noise_X_25519_AESGCM_SHA256", 64 },
    };

    [Theory]
    [MemberData(nameof(Protocols))]
    public Task OurInitiatorCompletesWithOurResponder(string protocol, int size) =>
        RunPairAsync(protocol, size, PeerProcess.StartOurs, PeerProcess.StartOurs);

    [Theory]
    [MemberData(nameof(Protocols))]
    public Task OurInitiatorCompletesWithDissononceResponder(string protocol, int size) =>
        RunPairAsync(protocol, size, PeerProcess.StartOurs, PeerProcess.StartDissononce);

    [Theory]
    [MemberData(nameof(Protocols))]
    public Task DissononceInitiatorCompletesWithOurResponder(string protocol, int size) =>
        RunPairAsync(protocol, size, PeerProcess.StartDissononce, PeerProcess.StartOurs);

    [Fact]
    public async Task MismatchedPskFailsOnBothSides()
    {
        const string protocol = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
        await using var responder = PeerProcess.StartDissononce(["--role", "responder", "--protocol", protocol, "--listen", "127.0.0.1:0", "--psk", new string('a', 64)]);
        var port = await ListeningPortAsync(responder);
        await using var initiator = PeerProcess.StartOurs(Ours("--role", "initiator", "--protocol", protocol, "--connect", $"127.0.0.1:{port}", "--psk", new string('b', 64)));
        var ours = await initiator.WaitAsync();
        var theirs = await responder.WaitAsync();
        Assert.NotEqual(0, ours.ExitCode);
        Assert.NotEqual(0, theirs.ExitCode);
        Assert.DoesNotContain("ok", ours.Lines);
    }

    [Fact]
    public async Task PinnedRemoteStaticThatDiffersFailsTheInitiator()
    {
        const string protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
        await using var responder = PeerProcess.StartOurs(Ours("--role", "responder", "--protocol", protocol, "--listen", "127.0.0.1:0", "--static", Convert.ToHexStringLower(ResponderStatic)));
        var port = await ListeningPortAsync(responder);
        await using var initiator = PeerProcess.StartOurs(Ours("--role", "initiator", "--protocol", protocol, "--connect", $"127.0.0.1:{port}", "--remote-static", Convert.ToHexStringLower(PublicKey(InitiatorStatic))));
        var outcome = await initiator.WaitAsync();
        Assert.NotEqual(0, outcome.ExitCode);
        Assert.Contains("--remote-static", outcome.Stderr, StringComparison.Ordinal);
        await responder.WaitAsync();
    }

    [Fact]
    public async Task UnsupportedProtocolIsAClearErrorWithNonZeroExit()
    {
        await using var peer = PeerProcess.StartOurs(Ours("--role", "initiator", "--protocol", "Noise_XX_448_ChaChaPoly_BLAKE2b", "--connect", "127.0.0.1:9"));
        var outcome = await peer.WaitAsync();
        Assert.Equal(1, outcome.ExitCode);
        Assert.Contains("448", outcome.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VectorsCommandPrintsTheSummaryAndSucceeds()
    {
        await using var run = PeerProcess.StartOurs(["conformance", "vectors", Path.Combine(NoiseVectorsFolder.Locate(), "noise-c-fallback.txt")]);
        var outcome = await run.WaitAsync();
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal("8 passed, 0 failed, 24 unsupported", outcome.Lines[^1]);
        Assert.Equal(24, outcome.Lines.Count(l => l.StartsWith("unsupported ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task VectorsCommandFailsOnAnAlteredVector()
    {
        var path = Path.Combine(Path.GetTempPath(), $"altered-{Guid.NewGuid():N}.txt");
        var text = await File.ReadAllTextAsync(Path.Combine(NoiseVectorsFolder.Locate(), "noise-c-fallback.txt"));
        await File.WriteAllTextAsync(path, text.Replace("dcf3293c98642cd2791d2c6f3232ef939d773f47b859f512dca93d", "dcf3293c98642cd2791d2c6f3232ef939d773f47b859f512dca93e", StringComparison.Ordinal));
        try
        {
            await using var run = PeerProcess.StartOurs(["conformance", "vectors", path]);
            var outcome = await run.WaitAsync();
            Assert.Equal(1, outcome.ExitCode);
            Assert.Equal("7 passed, 1 failed, 24 unsupported", outcome.Lines[^1]);
            Assert.Contains(outcome.Lines, l => l.StartsWith("FAILED ", StringComparison.Ordinal) && l.Contains("Noise_XXfallback_25519_ChaChaPoly_BLAKE2s", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static async Task RunPairAsync(string protocol, int size, Func<IEnumerable<string>, PeerProcess> startInitiator, Func<IEnumerable<string>, PeerProcess> startResponder)
    {
        var parsed = NoiseProtocol.Parse(protocol);
        var initiatorHasStatic = HasStatic(parsed.Pattern, initiator: true);
        var responderHasStatic = HasStatic(parsed.Pattern, initiator: false);
        var psks = Enumerable.Range(0, parsed.Pattern.PskCount).SelectMany(i => new[] { "--psk", Convert.ToHexStringLower(Enumerable.Repeat((byte)(0x40 + i), 32).ToArray()) }).ToArray();
        string[] common = ["--protocol", protocol, "--prologue", Prologue, "--count", "3", "--size", size.ToString(System.Globalization.CultureInfo.InvariantCulture), .. psks];

        List<string> responderArgs = ["--role", "responder", "--listen", "127.0.0.1:0", .. common];
        if (responderHasStatic)
        {
            responderArgs.AddRange(["--static", Convert.ToHexStringLower(ResponderStatic)]);
        }

        if (initiatorHasStatic)
        {
            responderArgs.AddRange(["--remote-static", Convert.ToHexStringLower(PublicKey(InitiatorStatic))]);
        }

        await using var responder = startResponder(AsOurs(startResponder, responderArgs));
        var port = await ListeningPortAsync(responder);

        List<string> initiatorArgs = ["--role", "initiator", "--connect", $"127.0.0.1:{port}", .. common];
        if (initiatorHasStatic)
        {
            initiatorArgs.AddRange(["--static", Convert.ToHexStringLower(InitiatorStatic)]);
        }

        if (responderHasStatic)
        {
            initiatorArgs.AddRange(["--remote-static", Convert.ToHexStringLower(PublicKey(ResponderStatic))]);
        }

        await using var initiator = startInitiator(AsOurs(startInitiator, initiatorArgs));
        var initiatorOutcome = await initiator.WaitAsync();
        var responderOutcome = await responder.WaitAsync();

        Assert.True(initiatorOutcome.ExitCode == 0, $"initiator: {initiatorOutcome}");
        Assert.True(responderOutcome.ExitCode == 0, $"responder: {responderOutcome}");
        Assert.Equal("ok", initiatorOutcome.Lines[^1]);
        Assert.Equal("ok", responderOutcome.Lines[^1]);
        var hash = initiatorOutcome.Value("hash");
        Assert.NotNull(hash);
        Assert.Equal(parsed.Hash.HashLength * 2, hash.Length);
        Assert.Equal(hash, responderOutcome.Value("hash"));
        Assert.Equal(responderHasStatic ? Convert.ToHexStringLower(PublicKey(ResponderStatic)) : null, initiatorOutcome.Value("remote-static"));
        Assert.Equal(initiatorHasStatic ? Convert.ToHexStringLower(PublicKey(InitiatorStatic)) : null, responderOutcome.Value("remote-static"));
    }

    private static IEnumerable<string> AsOurs(Func<IEnumerable<string>, PeerProcess> start, IEnumerable<string> arguments) =>
        start == PeerProcess.StartOurs ? Ours([.. arguments]) : arguments;

    private static string[] Ours(params string[] arguments) => ["conformance", "peer", .. arguments];

    private static async Task<int> ListeningPortAsync(PeerProcess responder)
    {
        var line = await responder.ReadLineAsync();
        Assert.StartsWith("listening 127.0.0.1:", line, StringComparison.Ordinal);
        return int.Parse(line[(line.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static bool HasStatic(HandshakePattern pattern, bool initiator) =>
        (initiator ? pattern.InitiatorPreMessage : pattern.ResponderPreMessage).Contains(NoiseToken.S)
        || pattern.Messages.Any(m => m.FromInitiator == initiator && m.Tokens.Contains(NoiseToken.S));

    private static byte[] PublicKey(byte[] privateKey)
    {
        using var pair = Curve25519Dh.Instance.ImportPrivateKey(privateKey);
        return pair.PublicKey.ToArray();
    }
}
