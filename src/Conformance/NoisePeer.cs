using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Conformance;

/// <summary>The role a <see cref="NoisePeer"/> plays.</summary>
public enum PeerRole
{
    /// <summary>Connects, sends the first handshake message and the test messages, and checks the echoes.</summary>
    Initiator,

    /// <summary>Listens, and answers each test message with its bytes reversed.</summary>
    Responder,
}

/// <summary>What a <see cref="NoisePeer"/> run needs; the fields mirror <c>securechannels conformance peer</c>'s options.</summary>
public sealed record NoisePeerOptions
{
    /// <summary>How long any single read or connect may wait before the run fails: a stalled peer must not hang a test run.</summary>
    public static readonly TimeSpan DefaultIoTimeout = TimeSpan.FromSeconds(30);

    public required PeerRole Role { get; init; }

    public required string Protocol { get; init; }

    /// <summary>Responder: where to listen (port 0 picks a free port). Initiator: where to connect.</summary>
    public required IPEndPoint EndPoint { get; init; }

    /// <summary>The local static private key; a fresh one is generated when the pattern needs one and none is given.</summary>
    public byte[]? LocalStatic { get; init; }

    /// <summary>
    /// The peer's static public key: the pre-message key for patterns that pre-share it (a <c>K</c> on the peer's
    /// side, or the responder of N, K and X), otherwise checked against the key received, as soon as it arrives.
    /// </summary>
    public byte[]? RemoteStatic { get; init; }

    public byte[] Prologue { get; init; } = [];

    public IReadOnlyList<byte[]> Psks { get; init; } = [];

    /// <summary>Transport messages the initiator sends after the handshake.</summary>
    public int Count { get; init; } = 3;

    /// <summary>Bytes of each transport message's payload.</summary>
    public int Size { get; init; } = 64;

    public TimeSpan IoTimeout { get; init; } = DefaultIoTimeout;
}

/// <summary>A failure of a peer run that is not a Noise error: a wrong payload, a closed connection, a bad option.</summary>
public sealed class PeerException(string message) : Exception(message);

/// <summary>
/// The conformance peer: runs one handshake and an echo exchange over TCP with any other Noise implementation.
/// Wire: each Noise message preceded by its length in 2 bytes big-endian; handshake message i carries the ASCII
/// payload <c>hs-i</c>; then the initiator sends <see cref="NoisePeerOptions.Count"/> messages of random bytes and
/// the responder answers each with the bytes reversed (one-way patterns get no answers).
/// Output lines: <c>listening HOST:PORT</c> (responder, first), <c>hash HEX</c>, <c>remote-static HEX</c> (when known), <c>ok</c>.
/// </summary>
public static class NoisePeer
{
    /// <summary>Runs the peer to completion. Any failure throws <see cref="NoiseException"/>, <see cref="PeerException"/> or an I/O exception.</summary>
    public static async Task RunAsync(NoisePeerOptions options, TextWriter output, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (options.Size is < 0 or > NoiseConstants.MaxTransportPayloadLength)
        {
            throw new PeerException($"--size must be between 0 and {NoiseConstants.MaxTransportPayloadLength}.");
        }

        if (options.Count < 0)
        {
            throw new PeerException("--count must not be negative.");
        }

        using var handshake = BuildHandshake(options);
        using var socket = await ConnectAsync(options, output, timeProvider, cancellationToken).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);

        var io = new FramedIo(stream, options.IoTimeout, timeProvider, cancellationToken);
        var buffer = new byte[NoiseConstants.MaxMessageLength];
        for (var i = 0; !handshake.IsCompleted; i++)
        {
            var expected = Encoding.ASCII.GetBytes($"hs-{i}");
            if (handshake.IsMyTurn)
            {
                var length = handshake.WriteMessage(expected, buffer);
                await io.WriteAsync(buffer.AsMemory(0, length)).ConfigureAwait(false);
            }
            else
            {
                var message = await io.ReadAsync().ConfigureAwait(false);
                var length = handshake.ReadMessage(message, buffer);
                if (!buffer.AsSpan(0, length).SequenceEqual(expected))
                {
                    throw new PeerException($"Handshake message {i} carried the wrong payload.");
                }

                // Check a pinned key the moment it arrives, before revealing anything more of ourselves.
                CheckRemoteStatic(options, handshake.RemoteStaticPublicKey);
            }
        }

        using var transport = handshake.ToTransport();
        await output.WriteLineAsync($"hash {Convert.ToHexStringLower(transport.HandshakeHash)}").ConfigureAwait(false);
        if (!transport.RemoteStaticPublicKey.IsEmpty)
        {
            await output.WriteLineAsync($"remote-static {Convert.ToHexStringLower(transport.RemoteStaticPublicKey)}").ConfigureAwait(false);
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        await ExchangeAsync(options, transport, io, buffer).ConfigureAwait(false);
        await output.WriteLineAsync("ok").ConfigureAwait(false);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static HandshakeState BuildHandshake(NoisePeerOptions options)
    {
        using var builder = new NoiseBuilder(options.Protocol).WithPrologue(options.Prologue);
        var pattern = builder.Protocol.Pattern;
        var isInitiator = options.Role == PeerRole.Initiator;
        if (pattern.IsFallback)
        {
            throw new PeerException($"{pattern.Name} is a fallback pattern; the peer harness has no way to run the handshake it falls back from.");
        }

        var localPre = isInitiator ? pattern.InitiatorPreMessage : pattern.ResponderPreMessage;
        var remotePre = isInitiator ? pattern.ResponderPreMessage : pattern.InitiatorPreMessage;
        var hasStatic = localPre.Contains(NoiseToken.S) || pattern.Messages.Any(m => m.FromInitiator == isInitiator && m.Tokens.Contains(NoiseToken.S));
        if (hasStatic)
        {
            if (options.LocalStatic is { } key)
            {
                builder.WithLocalStaticPrivateKey(key);
            }
            else
            {
                var fresh = RandomNumberGenerator.GetBytes(builder.Protocol.Dh.DhLength);
                builder.WithLocalStaticPrivateKey(fresh);
                CryptographicOperations.ZeroMemory(fresh);
            }
        }
        else if (options.LocalStatic is not null)
        {
            throw new PeerException($"{pattern.Name} has no static key on the {options.Role.ToString().ToLowerInvariant()}'s side; drop --static.");
        }

        var peerSendsStatic = pattern.Messages.Any(m => m.FromInitiator != isInitiator && m.Tokens.Contains(NoiseToken.S));
        if (remotePre.Contains(NoiseToken.S))
        {
            builder.WithRemoteStaticPublicKey(options.RemoteStatic ?? throw new PeerException($"{pattern.Name} needs --remote-static."));
        }
        else if (options.RemoteStatic is not null && !peerSendsStatic)
        {
            throw new PeerException($"In {pattern.Name} the peer has no static key to check; drop --remote-static.");
        }

        foreach (var psk in options.Psks)
        {
            builder.WithPsk(psk);
        }

        return isInitiator ? builder.BuildInitiator() : builder.BuildResponder();
    }

    private static async Task<Socket> ConnectAsync(NoisePeerOptions options, TextWriter output, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        using var linked = new Deadline(options.IoTimeout, timeProvider, cancellationToken);
        if (options.Role == PeerRole.Initiator)
        {
            var client = new Socket(options.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await client.ConnectAsync(options.EndPoint, linked.Token).ConfigureAwait(false);
                return client;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                client.Dispose();
                throw new PeerException($"Could not connect within {options.IoTimeout.TotalSeconds:0} s.");
            }
            catch (SocketException)
            {
                client.Dispose();
                throw;
            }
        }

        using var listener = new Socket(options.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(options.EndPoint);
        listener.Listen(1);
        var bound = (IPEndPoint)listener.LocalEndPoint!;
        await output.WriteLineAsync($"listening {FormatEndPoint(bound)}").ConfigureAwait(false);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var accepted = await listener.AcceptAsync(linked.Token).ConfigureAwait(false);
            accepted.NoDelay = true;
            return accepted;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new PeerException($"No initiator connected within {options.IoTimeout.TotalSeconds:0} s.");
        }
    }

    private static async Task ExchangeAsync(NoisePeerOptions options, NoiseTransport transport, FramedIo io, byte[] buffer)
    {
        var oneWay = transport.Protocol.Pattern.IsOneWay;
        var payload = new byte[options.Size];
        for (var i = 0; i < options.Count; i++)
        {
            if (options.Role == PeerRole.Initiator)
            {
                RandomNumberGenerator.Fill(payload);
                await io.WriteAsync(buffer.AsMemory(0, transport.Write(payload, buffer))).ConfigureAwait(false);
                if (oneWay)
                {
                    continue;
                }

                var answer = await io.ReadAsync().ConfigureAwait(false);
                var length = transport.Read(answer, buffer);
                Array.Reverse(payload);
                if (!buffer.AsSpan(0, length).SequenceEqual(payload))
                {
                    throw new PeerException($"Answer {i} is not the reversed message.");
                }
            }
            else
            {
                var message = await io.ReadAsync().ConfigureAwait(false);
                var length = transport.Read(message, buffer);
                if (length != options.Size)
                {
                    throw new PeerException($"Message {i} has {length} bytes; --size says {options.Size}.");
                }

                if (!oneWay)
                {
                    buffer.AsSpan(0, length).Reverse();
                    buffer.AsSpan(0, length).CopyTo(payload);
                    await io.WriteAsync(buffer.AsMemory(0, transport.Write(payload, buffer))).ConfigureAwait(false);
                }
            }
        }
    }

    private static void CheckRemoteStatic(NoisePeerOptions options, ReadOnlySpan<byte> received)
    {
        // For patterns that transmit the static key, --remote-static pins it: a different key is a failure.
        if (options.RemoteStatic is { } expected && !received.IsEmpty && !CryptographicOperations.FixedTimeEquals(expected, received))
        {
            throw new PeerException("The peer's static key is not the one --remote-static names.");
        }
    }

    private static string FormatEndPoint(IPEndPoint endPoint) =>
        endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]:{endPoint.Port}" : $"{endPoint.Address}:{endPoint.Port}";

    /// <summary>Reads and writes length-prefixed frames with a deadline on each operation.</summary>
    private sealed class FramedIo(Stream stream, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        private readonly byte[] _header = new byte[LengthPrefixedFrame.HeaderLength];

        public async Task WriteAsync(ReadOnlyMemory<byte> message)
        {
            LengthPrefixedFrame.WriteHeader(_header, message.Length);
            using var deadline = Deadline();
            try
            {
                await stream.WriteAsync(_header, deadline.Token).ConfigureAwait(false);
                await stream.WriteAsync(message, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new PeerException($"The peer took more than {timeout.TotalSeconds:0} s to accept our bytes.");
            }
        }

        public async Task<byte[]> ReadAsync()
        {
            using var deadline = Deadline();
            try
            {
                await stream.ReadExactlyAsync(_header, deadline.Token).ConfigureAwait(false);
                var message = new byte[System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(_header)];
                await stream.ReadExactlyAsync(message, deadline.Token).ConfigureAwait(false);
                return message;
            }
            catch (EndOfStreamException)
            {
                throw new PeerException("The peer closed the connection early.");
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new PeerException($"The peer sent nothing for {timeout.TotalSeconds:0} s.");
            }
        }

        private Deadline Deadline() => new(timeout, timeProvider, cancellationToken);
    }

    /// <summary>A token that fires when the caller cancels or the timeout passes on <see cref="TimeProvider"/>'s clock.</summary>
    private sealed class Deadline : IDisposable
    {
        private readonly CancellationTokenSource _timer;
        private readonly CancellationTokenRegistration _caller;

        public Deadline(TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken)
        {
            _timer = new CancellationTokenSource(timeout, timeProvider);
            _caller = cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _timer);
        }

        public CancellationToken Token => _timer.Token;

        public void Dispose()
        {
            _caller.Dispose();
            _timer.Dispose();
        }
    }
}
