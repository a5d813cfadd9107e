using System.Buffers;
using System.IO.Pipelines;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// The channel handshake (docs/protocol.md §8.2): Noise XX over length-prefixed frames, with each side's
/// identity, key attestation and credentials in the encrypted payloads of messages 2 and 3, verified and
/// judged by the access policy before the side sends or accepts the final message.
/// </summary>
internal static class ChannelHandshake
{
    public sealed record Result(NoiseTransport Transport, VerifiedPeer Peer, byte[] HandshakeHash);

    public static async Task<Result> RunAsync(IDuplexPipe pipe, SecureChannelOptions options, bool isInitiator, CancellationToken cancellationToken)
    {
        // One maximal Noise message of scratch per handshake, pooled; cleared on return because it held payloads.
        var buffer = ArrayPool<byte>.Shared.Rent(NoiseConstants.MaxMessageLength);
        try
        {
            return await RunAsync(pipe, options, isInitiator, buffer, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
        }
    }

    private static async Task<Result> RunAsync(IDuplexPipe pipe, SecureChannelOptions options, bool isInitiator, byte[] buffer, CancellationToken cancellationToken)
    {
        using var builder = new NoiseBuilder(ChannelFraming.Protocol)
            .WithPrologue(ChannelFraming.Prologue)
            .WithLocalStaticKeyPair(options.ChannelKey);
        if (options.FixedEphemeralPrivateKeyForTestingOnly is { } ephemeral)
        {
            builder.WithFixedEphemeralPrivateKeyForTestingOnly(ephemeral);
        }

        using var handshake = isInitiator ? builder.BuildInitiator() : builder.BuildResponder();
        var ownPayload = new HandshakePayload(
            options.Identity.History.Encoded,
            options.Attestation.Encode(),
            [.. options.Credentials.Select(c => c.Encoded)]).Encode(options.HandshakePaddingBlock);

        if (isInitiator)
        {
            await WriteAsync(pipe.Output, handshake, HandshakePayload.Empty.Encode(1), buffer, cancellationToken).ConfigureAwait(false);
            var payload = await ReadAsync(pipe, handshake, buffer, options.MaxCredentialChains, cancellationToken).ConfigureAwait(false);
            var peer = await JudgeAsync(pipe.Output, payload, handshake.RemoteStaticPublicKey.ToArray(), options, cancellationToken).ConfigureAwait(false);
            await WriteAsync(pipe.Output, handshake, ownPayload, buffer, cancellationToken).ConfigureAwait(false);
            var hash = handshake.HandshakeHash.ToArray();
            return new Result(handshake.ToTransport(), peer, hash);
        }
        else
        {
            var hello = await ReadAsync(pipe, handshake, buffer, options.MaxCredentialChains, cancellationToken).ConfigureAwait(false);
            if (hello.Identity is not null || hello.Attestation is not null || !hello.Credentials.IsEmpty)
            {
                throw await AbortAsync(pipe.Output, ChannelErrorCode.ProtocolError, "Message 1 carried identity material, which must never travel in clear.", cancellationToken).ConfigureAwait(false);
            }

            await WriteAsync(pipe.Output, handshake, ownPayload, buffer, cancellationToken).ConfigureAwait(false);
            var payload = await ReadAsync(pipe, handshake, buffer, options.MaxCredentialChains, cancellationToken).ConfigureAwait(false);
            var hash = handshake.HandshakeHash.ToArray();
            var transport = handshake.ToTransport();
            try
            {
                var peer = await JudgeAsync(pipe.Output, payload, transport.RemoteStaticPublicKey.ToArray(), options, cancellationToken, transport).ConfigureAwait(false);
                return new Result(transport, peer, hash);
            }
            catch (SecureChannelException)
            {
                transport.Dispose();
                throw;
            }
        }
    }

    // Verifies what the peer presented and asks the policy. On refusal the peer learns only the generic code:
    // in clear (an abort frame) before this side has a transport, encrypted (a CLOSE record) after.
    private static async Task<VerifiedPeer> JudgeAsync(PipeWriter output, HandshakePayload payload, ReadOnlyMemory<byte> remoteStatic, SecureChannelOptions options, CancellationToken cancellationToken, NoiseTransport? transport = null)
    {
        VerifiedPeer peer;
        var verified = new DeferredVerifications(options.Verifier.Cache);
        try
        {
            peer = Verify(payload, remoteStatic.Span, options, verified);
        }
        catch (SecureChannelException e)
        {
            throw await RefuseAsync(output, transport, e.Code, e.Message, e, cancellationToken).ConfigureAwait(false);
        }

        if (!options.PolicyAllows(peer))
        {
            var why = options.Policy is null ? "no access policy is configured (deny by default)" : $"the access policy denies {peer}";
            var refusal = await RefuseAsync(output, transport, ChannelErrorCode.AccessDenied, $"Access denied: {why}.", null, cancellationToken).ConfigureAwait(false);
            throw new SecureChannelException(refusal.Code, refusal.Message) { Peer = peer };
        }

        verified.Commit();
        return peer;
    }

    internal static VerifiedPeer Verify(HandshakePayload payload, ReadOnlySpan<byte> remoteStatic, SecureChannelOptions options, DeferredVerifications cache)
    {
        if (payload.Identity is null || payload.Attestation is null)
        {
            throw new SecureChannelException(ChannelErrorCode.AuthenticationFailed, "The peer presented no identity or no key attestation.");
        }

        // The verifier's cache spares a repeat peer the Ed25519 verifications of its history and attestation; the
        // binding to this handshake's static key and the attestation's validity are checked every time. What verifies
        // here is remembered only once the peer is accepted.
        VerifiedIdentity identity;
        KeyAttestation attestation;
        try
        {
            identity = IdentityHistory.Decode(payload.Identity).Verify(cache);
            var signed = SignedKeyAttestation.Decode(payload.Attestation);
            signed.Verify(identity, remoteStatic, options.TimeProvider.GetUtcNow(), TimeSpan.Zero, cache);
            attestation = signed.Attestation;
        }
        catch (IdentityException e)
        {
            throw new SecureChannelException(ChannelErrorCode.AuthenticationFailed, $"The peer's identity does not hold: {e.Kind}: {e.Message}", e);
        }

        var (chains, verified) = PresentedCredentials.Verify(payload.Credentials, identity.Identifier, options.Verifier, cache);
        return new VerifiedPeer(identity, chains, verified, attestation.ExpiresAt);
    }

    private static async Task WriteAsync(PipeWriter output, HandshakeState handshake, byte[] payload, byte[] buffer, CancellationToken cancellationToken)
    {
        var length = handshake.WriteMessage(payload, buffer);
        var span = output.GetSpan(LengthPrefixedFrame.HeaderLength + length);
        LengthPrefixedFrame.WriteHeader(span, length);
        buffer.AsSpan(0, length).CopyTo(span[LengthPrefixedFrame.HeaderLength..]);
        output.Advance(LengthPrefixedFrame.HeaderLength + length);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<HandshakePayload> ReadAsync(IDuplexPipe pipe, HandshakeState handshake, byte[] buffer, int maxCredentialChains, CancellationToken cancellationToken)
    {
        var output = pipe.Output;
        var frame = await ReadFrameAsync(pipe.Input, cancellationToken).ConfigureAwait(false);
        if (frame.Length == ChannelFraming.AbortFrameLength)
        {
            var code = ChannelFraming.ReadCode(frame);
            throw new SecureChannelException(code, $"The peer refused the handshake: {code}.", fromPeer: true);
        }

        try
        {
            int length;
            try
            {
                length = handshake.ReadMessage(frame, buffer);
            }
            catch (NoiseException e)
            {
                throw new SecureChannelException(ChannelErrorCode.ProtocolError, $"The handshake message does not read: {e.Kind}.", e);
            }

            return DecodeAny(buffer.AsMemory(0, length), maxCredentialChains);
        }
        catch (SecureChannelException e)
        {
            // Tell the peer (it would otherwise wait for its timeout), but only the generic code.
            await AbortAsync(output, e.Code, e.Message, cancellationToken).ConfigureAwait(false);
            throw;
        }
    }

    private static HandshakePayload DecodeAny(ReadOnlyMemory<byte> payload, int maxCredentialChains)
    {
        try
        {
            return HandshakePayload.Decode(payload, maxCredentialChains);
        }
        catch (WireFormatException e)
        {
            throw new SecureChannelException(ChannelErrorCode.ProtocolError, $"The handshake payload is malformed: {e.Message}", e);
        }
    }

    private static async Task<byte[]> ReadFrameAsync(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (LengthPrefixedFrame.TryRead(ref buffer, out var body))
            {
                var frame = body.ToArray();
                input.AdvanceTo(buffer.Start);
                return frame;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                throw new SecureChannelException(ChannelErrorCode.ConnectionLost, "The connection ended during the handshake.");
            }
        }
    }

    private static async Task<SecureChannelException> RefuseAsync(PipeWriter output, NoiseTransport? transport, ChannelErrorCode code, string reason, Exception? cause, CancellationToken cancellationToken)
    {
        if (transport is null)
        {
            await AbortAsync(output, code, reason, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var span = output.GetSpan(ChannelFraming.FrameLength(ChannelFraming.CloseBodyLength));
            var record = span.Slice(LengthPrefixedFrame.HeaderLength, ChannelFraming.RecordHeaderLength + ChannelFraming.CloseBodyLength);
            record[0] = (byte)RecordType.Close;
            ChannelFraming.WriteCode(record[1..], code);
            var length = transport.Write(record, span[LengthPrefixedFrame.HeaderLength..]);
            LengthPrefixedFrame.WriteHeader(span, length);
            output.Advance(LengthPrefixedFrame.HeaderLength + length);
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        return cause is null ? new SecureChannelException(code, reason) : new SecureChannelException(code, reason, cause);
    }

    private static async Task<SecureChannelException> AbortAsync(PipeWriter output, ChannelErrorCode code, string reason, CancellationToken cancellationToken)
    {
        var span = output.GetSpan(LengthPrefixedFrame.HeaderLength + ChannelFraming.AbortFrameLength);
        LengthPrefixedFrame.WriteHeader(span, ChannelFraming.AbortFrameLength);
        ChannelFraming.WriteCode(span[LengthPrefixedFrame.HeaderLength..], code);
        output.Advance(LengthPrefixedFrame.HeaderLength + ChannelFraming.AbortFrameLength);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        return new SecureChannelException(code, reason);
    }
}
