using System.Security.Cryptography;
using System.Text;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>
/// Shared helpers for the Noise tests: deterministic key material, builders configured from the pattern's
/// own prerequisites, and an in-memory handshake driver that checks every message on the way.
/// </summary>
internal static class NoiseTestKit
{
    public const string XX = "Noise_XX_25519_ChaChaPoly_SHA256";
    public const string NN = "Noise_NN_25519_ChaChaPoly_SHA256";
    public const string IK = "Noise_IK_25519_ChaChaPoly_SHA256";

    public static readonly byte[] InitiatorStaticPrivate = Bytes("initiator static", 32);
    public static readonly byte[] ResponderStaticPrivate = Bytes("responder static", 32);
    public static readonly byte[] OtherStaticPrivate = Bytes("some other static", 32);
    public static readonly byte[] Prologue = Bytes("prologue", 21);

    public static byte[] InitiatorStaticPublic => PublicKeyOf(InitiatorStaticPrivate);

    public static byte[] ResponderStaticPublic => PublicKeyOf(ResponderStaticPrivate);

    public static byte[] OtherStaticPublic => PublicKeyOf(OtherStaticPrivate);

    /// <summary>Deterministic pseudo-random bytes: SHA256(label || counter) blocks.</summary>
    public static byte[] Bytes(string label, int length)
    {
        var result = new byte[length];
        var labelBytes = Encoding.UTF8.GetBytes(label);
        var input = new byte[labelBytes.Length + 4];
        labelBytes.CopyTo(input, 0);
        for (var block = 0; block * 32 < length; block++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(input.AsSpan(labelBytes.Length), block);
            var digest = SHA256.HashData(input);
            digest.AsSpan(0, Math.Min(32, length - (block * 32))).CopyTo(result.AsSpan(block * 32));
        }

        return result;
    }

    public static byte[] Psk(int index) => Bytes($"psk {index}", NoiseConstants.PskLength);

    public static byte[] PublicKeyOf(byte[] privateKey)
    {
        using var pair = Curve25519Dh.Instance.ImportPrivateKey(privateKey);
        return pair.PublicKey.ToArray();
    }

    public static bool HasStatic(HandshakePattern pattern, bool initiator) =>
        (initiator ? pattern.InitiatorPreMessage : pattern.ResponderPreMessage).Contains(NoiseToken.S)
        || pattern.Messages.Any(m => m.FromInitiator == initiator && m.Tokens.Contains(NoiseToken.S));

    public static bool KnowsRemoteStatic(HandshakePattern pattern, bool initiator) =>
        (initiator ? pattern.ResponderPreMessage : pattern.InitiatorPreMessage).Contains(NoiseToken.S);

    /// <summary>A builder with exactly the keys the pattern needs on this side (per spec §7: pre-messages and "s" tokens).</summary>
    public static NoiseBuilder Configure(
        string protocolName,
        bool initiator,
        ICryptoResolver? resolver = null,
        byte[]? prologue = null,
        Func<int, byte[]>? psk = null,
        byte[]? remoteStaticOverride = null)
    {
        var builder = new NoiseBuilder(protocolName, resolver);
        var pattern = builder.Protocol.Pattern;
        builder.WithPrologue(prologue ?? Prologue);
        if (HasStatic(pattern, initiator))
        {
            builder.WithLocalStaticPrivateKey(initiator ? InitiatorStaticPrivate : ResponderStaticPrivate);
        }

        if (KnowsRemoteStatic(pattern, initiator))
        {
            builder.WithRemoteStaticPublicKey(remoteStaticOverride ?? (initiator ? ResponderStaticPublic : InitiatorStaticPublic));
        }

        for (var i = 0; i < pattern.PskCount; i++)
        {
            builder.WithPsk((psk ?? Psk)(i));
        }

        return builder;
    }

    public static HandshakeState BuildInitiator(string protocolName, ICryptoResolver? resolver = null)
    {
        using var builder = Configure(protocolName, initiator: true, resolver);
        return builder.BuildInitiator();
    }

    public static HandshakeState BuildResponder(string protocolName, ICryptoResolver? resolver = null)
    {
        using var builder = Configure(protocolName, initiator: false, resolver);
        return builder.BuildResponder();
    }

    public static byte[] HandshakePayload(int messageIndex) => Bytes($"handshake payload {messageIndex}", 7 + (messageIndex * 5));

    /// <summary>
    /// Drives both sides to completion, checking on every message that GetMessageLength predicts the
    /// written length, that the payload round-trips and that both sides agree on h afterwards.
    /// </summary>
    public static void RunHandshake(HandshakeState first, HandshakeState second)
    {
        var message = new byte[NoiseConstants.MaxMessageLength];
        var received = new byte[NoiseConstants.MaxMessageLength];
        for (var index = 0; !first.IsCompleted || !second.IsCompleted; index++)
        {
            Assert.True(index < 10, "the handshake does not terminate");
            Assert.NotEqual(first.IsMyTurn, second.IsMyTurn);
            var (writer, reader) = first.IsMyTurn ? (first, second) : (second, first);
            var payload = HandshakePayload(index);
            var predicted = writer.GetMessageLength(payload.Length);
            var written = writer.WriteMessage(payload, message);
            Assert.Equal(predicted, written);
            var read = reader.ReadMessage(message.AsSpan(0, written), received);
            Assert.Equal(payload, received.AsSpan(0, read).ToArray());
            Assert.Equal(writer.HandshakeHash.ToArray(), reader.HandshakeHash.ToArray());
        }

        Assert.True(first.IsCompleted && second.IsCompleted);
    }

    /// <summary>Builds both sides of <paramref name="protocolName"/>, runs the handshake and returns the transports.</summary>
    public static (NoiseTransport Initiator, NoiseTransport Responder) Transports(string protocolName, ICryptoResolver? resolver = null)
    {
        using var initiator = BuildInitiator(protocolName, resolver);
        using var responder = BuildResponder(protocolName, resolver);
        RunHandshake(initiator, responder);
        return (initiator.ToTransport(), responder.ToTransport());
    }

    public static (StatelessNoiseTransport Initiator, StatelessNoiseTransport Responder) StatelessTransports(string protocolName, ICryptoResolver? resolver = null)
    {
        using var initiator = BuildInitiator(protocolName, resolver);
        using var responder = BuildResponder(protocolName, resolver);
        RunHandshake(initiator, responder);
        return (initiator.ToStatelessTransport(), responder.ToStatelessTransport());
    }

    /// <summary>Encrypts <paramref name="payload"/> with <paramref name="sender"/> and returns the exact message bytes.</summary>
    public static byte[] Seal(NoiseTransport sender, ReadOnlySpan<byte> payload)
    {
        var message = new byte[payload.Length + NoiseConstants.TagLength];
        Assert.Equal(message.Length, sender.Write(payload, message));
        return message;
    }

    /// <summary>Decrypts <paramref name="message"/> with <paramref name="receiver"/> and returns the payload.</summary>
    public static byte[] Open(NoiseTransport receiver, ReadOnlySpan<byte> message)
    {
        var payload = new byte[Math.Max(0, message.Length - NoiseConstants.TagLength)];
        Assert.Equal(payload.Length, receiver.Read(message, payload));
        return payload;
    }

    public static NoiseException Fails(NoiseErrorKind kind, Action action)
    {
        var exception = Assert.Throws<NoiseException>(action);
        Assert.Equal(kind, exception.Kind);
        return exception;
    }

    /// <summary>A resolver that answers AESGCM with the platform (BCL) AES-GCM even where libsodium's is available.</summary>
    public static ICryptoResolver BclAesResolver { get; } = new FallbackCryptoResolver(new BclAesOnly(), DefaultCryptoResolver.Instance);

    private sealed class BclAesOnly : ICryptoResolver
    {
        public NoiseDh? ResolveDh(string name) => null;

        public NoiseCipher? ResolveCipher(string name) => name == "AESGCM" ? AeadCipher.Only("AESGCM", AeadImplementation.Platform) : null;

        public NoiseHash? ResolveHash(string name) => null;
    }
}
