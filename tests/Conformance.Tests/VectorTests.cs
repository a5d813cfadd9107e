using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Conformance.Tests;

/// <summary>Every community vector of the three files, one test case each, through both roles.</summary>
public sealed class VectorTests
{
    private static readonly string[] Files = ["cacophony.txt", "snow.txt", "noise-c-fallback.txt"];

    public static TheoryData<string, int, string> SupportedVectors()
    {
        var data = new TheoryData<string, int, string>();
        foreach (var file in Files)
        {
            var vectors = Load(file);
            for (var i = 0; i < vectors.Length; i++)
            {
                if (IsSupported(vectors[i]))
                {
                    data.Add(file, i, vectors[i].ProtocolName);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SupportedVectors))]
    public void VectorReplaysExactly(string file, int index, string protocolName)
    {
        var vector = Load(file)[index];
        Assert.Equal(protocolName, vector.ProtocolName);
        var result = NoiseVectorRunner.Run(vector);
        Assert.True(result.Outcome == VectorOutcome.Passed, $"{protocolName}: {result.Outcome}: {result.Reason}");
    }

    /// <summary>
    /// The same vectors with each AEAD through one implementation at every size: libsodium's (the one small
    /// records use) and the platform's (the one large records use), so both are proven, not only the one the
    /// vectors' short messages would pick.
    /// </summary>
    [Theory]
    [MemberData(nameof(SupportedVectors))]
    public void VectorReplaysExactlyThroughEachAeadImplementation(string file, int index, string protocolName)
    {
        var vector = Load(file)[index];
        foreach (var implementation in new[] { AeadImplementation.Libsodium, AeadImplementation.Platform })
        {
            var result = NoiseVectorRunner.Run(vector, new OneAeadImplementation(implementation));
            Assert.True(result.Outcome == VectorOutcome.Passed, $"{protocolName} ({implementation}): {result.Outcome}: {result.Reason}");
        }
    }

    [Fact]
    public void EveryDh25519VectorButTheObsoletePskOnesIsSupported()
    {
        // The bar: 472 cacophony + 408 snow + 8 noise-c fallback vectors.
        Assert.Equal(472, Load("cacophony.txt").Count(IsSupported));
        Assert.Equal(408, Load("snow.txt").Count(IsSupported));
        Assert.Equal(8, Load("noise-c-fallback.txt").Count(IsSupported));
    }

    [Fact]
    public void Dh448AndObsoletePskVectorsAreReportedUnsupportedByName()
    {
        var unsupported = Files.SelectMany(f => Load(f)).Where(v => !IsSupported(v)).ToList();
        Assert.Equal(472 + 8 + 16, unsupported.Count);
        foreach (var vector in unsupported)
        {
            var result = NoiseVectorRunner.Run(vector);
            Assert.Equal(VectorOutcome.Unsupported, result.Outcome);
            Assert.Equal(vector.ProtocolName, result.ProtocolName);
            Assert.NotNull(result.Reason);
        }
    }

    [Fact]
    public void AlteredCiphertextInAVectorIsReportedAsFailed()
    {
        var vector = Load("cacophony.txt").First(v => v.ProtocolName == "Noise_XX_25519_ChaChaPoly_BLAKE2b");
        var ciphertext = vector.Messages[1].Ciphertext.ToArray();
        ciphertext[^1] ^= 1;
        var altered = vector with { Messages = vector.Messages.SetItem(1, vector.Messages[1] with { Ciphertext = ciphertext }) };

        var result = NoiseVectorRunner.Run(altered);

        Assert.Equal(VectorOutcome.Failed, result.Outcome);
        Assert.Contains("message 1", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void AlteredHandshakeHashInAVectorIsReportedAsFailed()
    {
        var vector = Load("cacophony.txt").First(v => v.ProtocolName == "Noise_IK_25519_AESGCM_SHA256");
        var hash = vector.HandshakeHash!.ToArray();
        hash[0] ^= 0x80;

        var result = NoiseVectorRunner.Run(vector with { HandshakeHash = hash });

        Assert.Equal(VectorOutcome.Failed, result.Outcome);
        Assert.Contains("handshake hash", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void MalformedVectorFileIsAFormatError()
    {
        using var notJson = new MemoryStream("{\"vectors\": [ {"u8.ToArray());
        Assert.Throws<FormatException>(() => NoiseVector.Read(notJson));
        using var noVectors = new MemoryStream("{\"tests\": []}"u8.ToArray());
        Assert.Throws<FormatException>(() => NoiseVector.Read(noVectors));
    }

    private static bool IsSupported(NoiseVector vector) =>
        vector.ProtocolName.Contains("_25519_", StringComparison.Ordinal) && !vector.ProtocolName.StartsWith("NoisePSK_", StringComparison.Ordinal);

    private static readonly Dictionary<string, System.Collections.Immutable.ImmutableArray<NoiseVector>> Cache = [];

    private static System.Collections.Immutable.ImmutableArray<NoiseVector> Load(string file)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(file, out var vectors))
            {
                vectors = NoiseVector.ReadFile(Path.Combine(NoiseVectorsFolder.Locate(), file));
                Cache[file] = vectors;
            }

            return vectors;
        }
    }

    private sealed class OneAeadImplementation(AeadImplementation implementation) : ICryptoResolver
    {
        public NoiseDh? ResolveDh(string name) => DefaultCryptoResolver.Instance.ResolveDh(name);

        // Fails the vector (as unsupported) rather than silently testing the default where one cannot run.
        public NoiseCipher? ResolveCipher(string name) => AeadCipher.Only(name, implementation);

        public NoiseHash? ResolveHash(string name) => DefaultCryptoResolver.Instance.ResolveHash(name);
    }
}
