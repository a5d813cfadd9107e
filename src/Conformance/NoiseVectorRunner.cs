using System.Security.Cryptography;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Conformance;

/// <summary>How a vector came out.</summary>
public enum VectorOutcome
{
    /// <summary>Every ciphertext, payload and the handshake hash matched.</summary>
    Passed,

    /// <summary>Something did not match, or an operation failed that should not have.</summary>
    Failed,

    /// <summary>The vector names something this implementation deliberately does not provide (DH 448, the obsolete NoisePSK scheme).</summary>
    Unsupported,
}

/// <summary>The outcome of one vector, with the reason when it did not pass.</summary>
public sealed record VectorResult(string ProtocolName, VectorOutcome Outcome, string? Reason = null);

/// <summary>
/// Replays a test vector through both roles of our implementation, with the vector's fixed ephemeral keys:
/// every message written must equal the vector's ciphertext and every message read must give back its payload.
/// </summary>
public static class NoiseVectorRunner
{
    /// <summary>Runs one vector; never throws for a bad vector, it reports it.</summary>
    /// <param name="vector">The vector.</param>
    /// <param name="resolver">The primitives to prove, or null for the defaults.</param>
    public static VectorResult Run(NoiseVector vector, ICryptoResolver? resolver = null)
    {
        ArgumentNullException.ThrowIfNull(vector);
        try
        {
            Replay(vector, resolver);
            return new VectorResult(vector.ProtocolName, VectorOutcome.Passed);
        }
        catch (NoiseException e) when (e.Kind == NoiseErrorKind.UnsupportedPrimitive)
        {
            return new VectorResult(vector.ProtocolName, VectorOutcome.Unsupported, e.Message);
        }
        catch (VectorMismatchException e)
        {
            return new VectorResult(vector.ProtocolName, VectorOutcome.Failed, e.Message);
        }
        catch (NoiseException e)
        {
            return new VectorResult(vector.ProtocolName, VectorOutcome.Failed, $"{e.Kind}: {e.Message}");
        }
    }

    private static void Replay(NoiseVector vector, ICryptoResolver? resolver)
    {
        var protocol = NoiseProtocol.Parse(vector.ProtocolName, resolver);
        var firstProtocol = vector.Fallback ? NoiseProtocol.Parse(vector.ProtocolName.Replace("XXfallback", "IK", StringComparison.Ordinal), resolver) : protocol;

        var initiator = Build(firstProtocol, vector.InitiatorPrologue, vector.InitiatorStatic, vector.InitiatorRemoteStatic, vector.InitiatorEphemeral, vector.InitiatorPsks, isInitiator: true);
        var responder = Build(firstProtocol, vector.ResponderPrologue, vector.ResponderStatic, vector.ResponderRemoteStatic, vector.ResponderEphemeral, vector.ResponderPsks, isInitiator: false);
        NoiseTransport? initiatorTransport = null;
        NoiseTransport? responderTransport = null;
        try
        {
            var index = 0;
            if (vector.Fallback)
            {
                // noise-c's fallback vectors: the initiator's IK message names the wrong responder key, so the
                // responder must fail to read it, and both continue with the fallback pattern (spec §10.2).
                var first = vector.Messages[0];
                Expect(Write(initiator, first.Payload), first.Ciphertext, "message 0 ciphertext");
                if (TryRead(responder, first.Ciphertext))
                {
                    throw new VectorMismatchException("message 0: the responder accepted an IK message made for another key");
                }

                initiator = Fallback(protocol, vector.InitiatorPrologue, null, initiator);
                responder = Fallback(protocol, vector.ResponderPrologue, vector.ResponderEphemeral, responder);
                index = 1;
            }

            for (; index < vector.Messages.Length; index++)
            {
                var message = vector.Messages[index];
                if (initiatorTransport is null)
                {
                    var (writer, reader) = initiator.IsMyTurn ? (initiator, responder) : (responder, initiator);
                    Expect(Write(writer, message.Payload), message.Ciphertext, $"message {index} ciphertext");
                    Expect(Read(reader, message.Ciphertext), message.Payload, $"message {index} payload");
                    if (initiator.IsCompleted && responder.IsCompleted)
                    {
                        var hash = initiator.HandshakeHash.ToArray();
                        Expect(responder.HandshakeHash.ToArray(), hash, "responder's handshake hash");
                        if (vector.HandshakeHash is not null)
                        {
                            Expect(hash, vector.HandshakeHash, "handshake hash");
                        }

                        initiatorTransport = initiator.ToTransport();
                        responderTransport = responder.ToTransport();
                    }
                }
                else
                {
                    var initiatorSends = protocol.Pattern.IsOneWay || index % 2 == 0;
                    var (writer, reader) = initiatorSends ? (initiatorTransport, responderTransport!) : (responderTransport!, initiatorTransport);
                    var buffer = new byte[message.Payload.Length + NoiseConstants.TagLength];
                    writer.Write(message.Payload, buffer);
                    Expect(buffer, message.Ciphertext, $"message {index} ciphertext");
                    var payload = new byte[message.Payload.Length];
                    reader.Read(message.Ciphertext, payload);
                    Expect(payload, message.Payload, $"message {index} payload");
                }
            }

            if (initiatorTransport is null)
            {
                throw new VectorMismatchException("the vector ended before the handshake completed");
            }
        }
        finally
        {
            initiator.Dispose();
            responder.Dispose();
            initiatorTransport?.Dispose();
            responderTransport?.Dispose();
        }
    }

    private static HandshakeState Build(NoiseProtocol protocol, byte[] prologue, byte[]? localStatic, byte[]? remoteStatic, byte[]? ephemeral, IReadOnlyList<byte[]> psks, bool isInitiator)
    {
        using var builder = new NoiseBuilder(protocol).WithPrologue(prologue);
        var pattern = protocol.Pattern;
        var localPre = isInitiator ? pattern.InitiatorPreMessage : pattern.ResponderPreMessage;
        var remotePre = isInitiator ? pattern.ResponderPreMessage : pattern.InitiatorPreMessage;

        // Vector files give every key a side has, used or not; hand the builder only what the pattern uses.
        if (localStatic is not null && (localPre.Contains(NoiseToken.S) || pattern.Messages.Any(m => m.FromInitiator == isInitiator && m.Tokens.Contains(NoiseToken.S))))
        {
            builder.WithLocalStaticPrivateKey(localStatic);
        }

        if (remoteStatic is not null && remotePre.Contains(NoiseToken.S))
        {
            builder.WithRemoteStaticPublicKey(remoteStatic);
        }

        if (ephemeral is not null)
        {
            builder.WithFixedEphemeralPrivateKeyForTestingOnly(ephemeral);
        }

        foreach (var psk in psks)
        {
            builder.WithPsk(psk);
        }

        return isInitiator ? builder.BuildInitiator() : builder.BuildResponder();
    }

    private static HandshakeState Fallback(NoiseProtocol protocol, byte[] prologue, byte[]? ephemeral, HandshakeState failed)
    {
        using var builder = new NoiseBuilder(protocol).WithPrologue(prologue);
        if (ephemeral is not null)
        {
            builder.WithFixedEphemeralPrivateKeyForTestingOnly(ephemeral);
        }

        var next = builder.BuildFallback(failed);
        failed.Dispose();
        return next;
    }

    private static byte[] Write(HandshakeState state, byte[] payload)
    {
        var buffer = new byte[state.GetMessageLength(payload.Length)];
        var written = state.WriteMessage(payload, buffer);
        return buffer[..written];
    }

    private static byte[] Read(HandshakeState state, byte[] message)
    {
        var buffer = new byte[message.Length];
        var written = state.ReadMessage(message, buffer);
        return buffer[..written];
    }

    private static bool TryRead(HandshakeState state, byte[] message)
    {
        try
        {
            Read(state, message);
            return true;
        }
        catch (NoiseException e) when (e.Kind == NoiseErrorKind.DecryptFailed)
        {
            return false;
        }
    }

    private static void Expect(byte[] actual, byte[] expected, string what)
    {
        if (!CryptographicOperations.FixedTimeEquals(actual, expected))
        {
            throw new VectorMismatchException($"{what} differs: expected {Convert.ToHexStringLower(expected)}, got {Convert.ToHexStringLower(actual)}");
        }
    }

    private sealed class VectorMismatchException(string message) : Exception(message);
}
