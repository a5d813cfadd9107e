using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// Handshake messages for every pattern, role and position. Input: <c>[case][message]</c>; the case byte picks a
/// (protocol, message index) pair from <see cref="Cases"/>, whose reader is the side that does not send that message.
/// Both sides are built with fixed static, ephemeral and pre-shared keys, the honest earlier messages are exchanged,
/// and the reader then reads the fuzzed message (and, if it completes the handshake, splits into a transport).
/// Expected: <see cref="NoiseException"/> (too short or long, authentication failed, low-order key).
/// </summary>
public sealed class NoiseHandshakeTarget : IFuzzTarget
{
    private static readonly byte[] Prologue = "securechannels/fuzz"u8.ToArray();
    private static readonly byte[] HonestPayload = "honest payload"u8.ToArray();

    // Reused by every input (targets run one input at a time): 64 KiB arrays would otherwise land on the large object heap twice per execution.
    private static readonly byte[] Message = new byte[NoiseConstants.MaxMessageLength];
    private static readonly byte[] Payload = new byte[NoiseConstants.MaxMessageLength];

    // Each pattern under the channel's suite (so XX here is Noise_XX_25519_ChaChaPoly_BLAKE2b, the channel protocol),
    // plus the other ciphers and hashes and the psk modifiers on a few patterns.
    private static readonly string[] Protocols =
    [
        .. HandshakePattern.BaseNames.Order(StringComparer.Ordinal).Select(p => $"Noise_{p}_25519_ChaChaPoly_BLAKE2b"),
        "Noise_XX_25519_AESGCM_SHA256",
        "Noise_IK_25519_ChaChaPoly_SHA512",
        "Noise_NK_25519_AESGCM_BLAKE2s",
        "Noise_NNpsk0_25519_ChaChaPoly_SHA256",
        "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b",
        "Noise_IKpsk2_25519_AESGCM_SHA256",
        "Noise_KKpsk0+psk2_25519_ChaChaPoly_BLAKE2s",
        "Noise_Npsk0_25519_ChaChaPoly_SHA256",
    ];

    /// <summary>Every (protocol, message index) the case byte can pick.</summary>
    public static IReadOnlyList<(NoiseProtocol Protocol, int Message)> Cases { get; } =
        [.. Protocols.Select(name => NoiseProtocol.Parse(name)).SelectMany(p => Enumerable.Range(0, p.Pattern.Messages.Length).Select(i => (p, i)))];

    public string Name => "noise-handshake";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        var (protocol, index) = Cases[input[0] % Cases.Count];
        using var initiator = Build(protocol, isInitiator: true);
        using var responder = Build(protocol, isInitiator: false);
        var (message, payload) = (Message, Payload);
        for (var i = 0; i < index; i++)
        {
            var (writer, reader) = protocol.Pattern.Messages[i].FromInitiator ? (initiator, responder) : (responder, initiator);
            var length = writer.WriteMessage(HonestPayload, message);
            reader.ReadMessage(message.AsSpan(0, length), payload);
        }

        var target = protocol.Pattern.Messages[index].FromInitiator ? responder : initiator;
        try
        {
            target.ReadMessage(input[1..], payload);
        }
        catch (NoiseException)
        {
            // Every malformed or forged message must end here, and the state must refuse to go on.
            if (!target.IsCompleted && target.IsMyTurn)
            {
                throw new FuzzInvariantException("A handshake that failed to read a message still offers its turn.");
            }

            return;
        }

        if (target.IsCompleted)
        {
            using var transport = target.ToTransport();
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        // The honest message at each position, so the fuzzer starts from messages that read.
        for (var c = 0; c < Cases.Count && c < 256; c++)
        {
            var (protocol, index) = Cases[c];
            using var initiator = Build(protocol, isInitiator: true);
            using var responder = Build(protocol, isInitiator: false);
            var message = new byte[NoiseConstants.MaxMessageLength];
            var payload = new byte[NoiseConstants.MaxMessageLength];
            var length = 0;
            for (var i = 0; i <= index; i++)
            {
                var (writer, reader) = protocol.Pattern.Messages[i].FromInitiator ? (initiator, responder) : (responder, initiator);
                length = writer.WriteMessage(HonestPayload, message);
                if (i < index)
                {
                    reader.ReadMessage(message.AsSpan(0, length), payload);
                }
            }

            yield return [(byte)c, .. message.AsSpan(0, length)];
        }
    }

    // The builder's own rules decide which keys a side has: a static key only where the pattern sends one, the remote
    // static key only where a pre-message gives it, one psk per modifier. Fixed keys through the testing hook make the
    // honest messages byte-identical in every process.
    private static HandshakeState Build(NoiseProtocol protocol, bool isInitiator)
    {
        var pattern = protocol.Pattern;
        var localPre = isInitiator ? pattern.InitiatorPreMessage : pattern.ResponderPreMessage;
        var remotePre = isInitiator ? pattern.ResponderPreMessage : pattern.InitiatorPreMessage;
        var builder = new NoiseBuilder(protocol).WithPrologue(Prologue);
        try
        {
            if (localPre.Contains(NoiseToken.S) || pattern.Messages.Any(m => m.FromInitiator == isInitiator && m.Tokens.Contains(NoiseToken.S)))
            {
                builder.WithLocalStaticPrivateKey(StaticPrivate(isInitiator));
            }

            if (remotePre.Contains(NoiseToken.S))
            {
                builder.WithRemoteStaticPublicKey(StaticPublic(!isInitiator));
            }

            for (var i = 0; i < pattern.PskCount; i++)
            {
                builder.WithPsk(FuzzWorld.Seed((byte)(60 + i)));
            }

            builder.WithFixedEphemeralPrivateKeyForTestingOnly(FuzzWorld.Seed(isInitiator ? (byte)52 : (byte)53));
            return isInitiator ? builder.BuildInitiator() : builder.BuildResponder();
        }
        finally
        {
            builder.Dispose();
        }
    }

    private static byte[] StaticPrivate(bool initiator) => FuzzWorld.Seed(initiator ? (byte)50 : (byte)51);

    private static readonly byte[][] StaticPublics = [PublicOf(StaticPrivate(false)), PublicOf(StaticPrivate(true))];

    private static byte[] StaticPublic(bool initiator) => StaticPublics[initiator ? 1 : 0];

    private static byte[] PublicOf(byte[] privateKey)
    {
        using var pair = Curve25519Dh.Instance.ImportPrivateKey(privateKey);
        return pair.PublicKey.ToArray();
    }
}
