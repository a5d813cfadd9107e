using System.Security.Cryptography;
using SecureChannels.Protocol.Noise;

namespace SecureChannels.Benchmarks;

/// <summary>
/// Two parties of an XX handshake: their static keys and the buffers a handshake needs, made once so a
/// benchmark measures the protocol and not its own scaffolding.
/// </summary>
internal sealed class NoisePeers
{
    public const string ChaChaPolyBlake2b = "Noise_XX_25519_ChaChaPoly_BLAKE2b";

    public const string AesGcmSha256 = "Noise_XX_25519_AESGCM_SHA256";

    // XX's largest message with an empty payload is 32 + 48 + 16 = 96 bytes; 256 leaves room.
    private const int HandshakeBufferLength = 256;

    private readonly byte[] _initiatorStatic = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _responderStatic = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _message = new byte[HandshakeBufferLength];
    private readonly byte[] _payload = new byte[HandshakeBufferLength];

    public NoisePeers(string protocolName)
    {
        // Parsed once: a server resolves its protocol once, not per connection.
        Protocol = NoiseProtocol.Parse(protocolName);
    }

    public NoiseProtocol Protocol { get; }

    /// <summary>The protocol name for a cipher of the transport benchmarks.</summary>
    public static string ForCipher(string cipher) => cipher switch
    {
        "ChaChaPoly" => ChaChaPolyBlake2b,
        "AESGCM" => AesGcmSha256,
        _ => throw new ArgumentException($"Unknown cipher '{cipher}'.", nameof(cipher)),
    };

    /// <summary>
    /// A whole XX handshake, both sides, in memory: build both states, three messages with empty payloads,
    /// ToTransport on both. The caller owns (and must dispose) the two transports.
    /// </summary>
    public (NoiseTransport Initiator, NoiseTransport Responder) Handshake()
    {
        using var initiatorBuilder = new NoiseBuilder(Protocol);
        using var responderBuilder = new NoiseBuilder(Protocol);
        using var initiator = initiatorBuilder.WithLocalStaticPrivateKey(_initiatorStatic).BuildInitiator();
        using var responder = responderBuilder.WithLocalStaticPrivateKey(_responderStatic).BuildResponder();

        // -> e
        var length = initiator.WriteMessage(default, _message);
        responder.ReadMessage(_message.AsSpan(0, length), _payload);

        // <- e, ee, s, es
        length = responder.WriteMessage(default, _message);
        initiator.ReadMessage(_message.AsSpan(0, length), _payload);

        // -> s, se
        length = initiator.WriteMessage(default, _message);
        responder.ReadMessage(_message.AsSpan(0, length), _payload);

        var initiatorTransport = initiator.ToTransport();
        try
        {
            return (initiatorTransport, responder.ToTransport());
        }
        catch
        {
            initiatorTransport.Dispose();
            throw;
        }
    }

    /// <summary>Runs one handshake and checks both sides agree, so a broken build fails in setup instead of timing garbage.</summary>
    public void Verify()
    {
        var (initiator, responder) = Handshake();
        using (initiator)
        using (responder)
        {
            if (!initiator.HandshakeHash.SequenceEqual(responder.HandshakeHash))
            {
                throw new InvalidOperationException($"{Protocol.Name}: the two sides ended with different handshake hashes.");
            }
        }
    }
}
