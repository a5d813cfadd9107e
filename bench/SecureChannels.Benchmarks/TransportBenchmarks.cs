using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using SecureChannels.Protocol.Noise;

namespace SecureChannels.Benchmarks;

/// <summary>
/// One transport message: the initiator's <see cref="NoiseTransport.Write"/> then the responder's
/// <see cref="NoiseTransport.Read"/>, into buffers allocated in setup. This path must allocate nothing.
/// </summary>
[MemoryDiagnoser]
public class TransportBenchmarks
{
    private NoiseTransport _initiator = null!;
    private NoiseTransport _responder = null!;
    private byte[] _payload = [];
    private byte[] _message = [];
    private byte[] _received = [];

    [Params("ChaChaPoly", "AESGCM")]
    public string Cipher { get; set; } = "ChaChaPoly";

    [Params(64, 1024, 16384)]
    public int PayloadSize { get; set; } = 64;

    [GlobalSetup]
    public void Setup()
    {
        (_initiator, _responder) = new NoisePeers(NoisePeers.ForCipher(Cipher)).Handshake();
        _payload = RandomNumberGenerator.GetBytes(PayloadSize);
        _message = new byte[PayloadSize + NoiseConstants.TagLength];
        _received = new byte[PayloadSize];

        WriteRead();
        if (!_received.AsSpan().SequenceEqual(_payload))
        {
            throw new InvalidOperationException("The responder did not read what the initiator wrote.");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _initiator.Dispose();
        _responder.Dispose();
    }

    [Benchmark]
    public int WriteRead()
    {
        var length = _initiator.Write(_payload, _message);
        return _responder.Read(_message.AsSpan(0, length), _received);
    }
}

/// <summary>
/// REKEY on both ends of one direction: the initiator's <see cref="NoiseTransport.RekeySending"/> and the
/// responder's <see cref="NoiseTransport.RekeyReceiving"/>. A class of its own so it does not run once per
/// payload size of <see cref="TransportBenchmarks"/>, which it does not depend on.
/// </summary>
[MemoryDiagnoser]
public class RekeyBenchmarks
{
    private NoiseTransport _initiator = null!;
    private NoiseTransport _responder = null!;

    [Params("ChaChaPoly", "AESGCM")]
    public string Cipher { get; set; } = "ChaChaPoly";

    [GlobalSetup]
    public void Setup() => (_initiator, _responder) = new NoisePeers(NoisePeers.ForCipher(Cipher)).Handshake();

    [GlobalCleanup]
    public void Cleanup()
    {
        _initiator.Dispose();
        _responder.Dispose();
    }

    [Benchmark]
    public void Rekey()
    {
        _initiator.RekeySending();
        _responder.RekeyReceiving();
    }
}
