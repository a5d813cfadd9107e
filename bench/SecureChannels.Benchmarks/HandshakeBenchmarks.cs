using BenchmarkDotNet.Attributes;
using SecureChannels.Protocol.Noise;

namespace SecureChannels.Benchmarks;

/// <summary>
/// A complete XX handshake, both sides in one thread: two builders, three messages (empty payloads),
/// ToTransport on both, and disposal of everything. Per handshake, both sides together: 6 X25519 agreements
/// (ee, es, se on each side), 2 ephemeral key generations and 2 static key imports (one base-point
/// multiplication each: NoiseBuilder imports the static key on every build), 10 cipher keys (3 MixKey and
/// 2 Split per side), and the hashing and AEAD of the symmetric state.
/// </summary>
[MemoryDiagnoser]
public class HandshakeBenchmarks
{
    private NoisePeers _peers = null!;

    [Params(NoisePeers.ChaChaPolyBlake2b, NoisePeers.AesGcmSha256)]
    public string Protocol { get; set; } = NoisePeers.ChaChaPolyBlake2b;

    [GlobalSetup]
    public void Setup()
    {
        _peers = new NoisePeers(Protocol);
        _peers.Verify();
    }

    [Benchmark]
    public int Handshake()
    {
        var (initiator, responder) = _peers.Handshake();
        using (initiator)
        using (responder)
        {
            return initiator.HandshakeHash.Length;
        }
    }
}
