using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>
/// What a man in the middle does with frame number <c>index</c> (counted from 0 per direction, handshake
/// messages included) given the frame as it arrived (2-byte big-endian length, then the body): the frames it
/// passes on instead, possibly none.
/// </summary>
internal delegate IReadOnlyList<byte[]> FrameTamper(int index, byte[] frame);

/// <summary>
/// One direction of a man in the middle: copies length-prefixed frames from one pipe to another, records every
/// byte it sees and every byte it sends on, and lets a <see cref="FrameTamper"/> alter, drop, duplicate, swap,
/// truncate or hold frames.
/// </summary>
internal sealed class FrameRelay
{
    private readonly PipeReader _source;
    private readonly PipeWriter _destination;
    private readonly FrameTamper _tamper;
    private readonly Lock _lock = new();
    private readonly ArrayBufferWriter<byte> _seen = new();
    private readonly ArrayBufferWriter<byte> _sent = new();
    private readonly TaskCompletionSource _blocked = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _frames;
    private TaskCompletionSource _frameSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly Func<int, Task>? _gate;

    public FrameRelay(PipeReader source, PipeWriter destination, FrameTamper? tamper = null, Func<int, Task>? gate = null)
    {
        _source = source;
        _destination = destination;
        _tamper = tamper ?? FrameTampers.PassThrough;
        _gate = gate;
        Completion = Task.Run(RunAsync);
    }

    /// <summary>Ends when either side of the relay ends.</summary>
    public Task Completion { get; }

    /// <summary>Completes the first time a flush towards the destination does not complete at once: the reader stopped reading.</summary>
    public Task Blocked => _blocked.Task;

    /// <summary>Frames read from the source so far.</summary>
    public int Frames => Volatile.Read(ref _frames);

    /// <summary>Bytes written to the destination so far.</summary>
    public long ForwardedBytes
    {
        get
        {
            lock (_lock)
            {
                return _sent.WrittenCount;
            }
        }
    }

    /// <summary>Completes once <paramref name="count"/> frames have been read from the source (and passed on or not).</summary>
    public async Task WaitForFramesAsync(int count)
    {
        while (true)
        {
            var signal = Volatile.Read(ref _frameSignal);
            if (Frames >= count)
            {
                return;
            }

            await signal.Task.WaitAsync(ChannelTestKit.Guard).ConfigureAwait(false);
        }
    }

    /// <summary>Every byte read from the source and every byte sent on.</summary>
    public (byte[] Seen, byte[] Sent) Capture()
    {
        lock (_lock)
        {
            return (_seen.WrittenSpan.ToArray(), _sent.WrittenSpan.ToArray());
        }
    }

    private async Task RunAsync()
    {
        try
        {
            while (true)
            {
                var result = await _source.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                var wrote = false;
                while (LengthPrefixedFrame.TryRead(ref buffer, out var body))
                {
                    var frame = new byte[LengthPrefixedFrame.HeaderLength + body.Length];
                    BinaryPrimitives.WriteUInt16BigEndian(frame, (ushort)body.Length);
                    body.CopyTo(frame.AsSpan(LengthPrefixedFrame.HeaderLength));
                    lock (_lock)
                    {
                        _seen.Write(frame);
                    }

                    if (_gate is not null)
                    {
                        // Holds this frame (and everything after it) until the gate opens; what came before goes on now.
                        if (wrote)
                        {
                            await _destination.FlushAsync().ConfigureAwait(false);
                        }

                        await _gate(_frames).ConfigureAwait(false);
                    }

                    foreach (var output in _tamper(_frames, (byte[])frame.Clone()))
                    {
                        lock (_lock)
                        {
                            _sent.Write(output);
                        }

                        _destination.Write(output);
                        wrote = true;
                    }

                    Interlocked.Increment(ref _frames);
                    Interlocked.Exchange(ref _frameSignal, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                }

                _source.AdvanceTo(buffer.Start, buffer.End);
                if (wrote)
                {
                    var flushing = _destination.FlushAsync();
                    if (!flushing.IsCompleted)
                    {
                        _blocked.TrySetResult();
                    }

                    if ((await flushing.ConfigureAwait(false)).IsCompleted)
                    {
                        return;
                    }
                }

                if (result.IsCompleted || result.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (InvalidOperationException)
        {
            // One side of the relay went away mid-operation: the relay ends too.
        }
        finally
        {
            await _source.CompleteAsync().ConfigureAwait(false);
            await _destination.CompleteAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>The tampering a man in the middle can do.</summary>
internal static class FrameTampers
{
    public static FrameTamper PassThrough { get; } = (_, frame) => [frame];

    /// <summary>Flips one bit of the body of frame <paramref name="index"/> (at <paramref name="bodyOffset"/>; negative counts from the end).</summary>
    public static FrameTamper FlipBit(int index, int bodyOffset = 0) => (i, frame) =>
    {
        if (i == index)
        {
            var at = bodyOffset >= 0 ? LengthPrefixedFrame.HeaderLength + bodyOffset : frame.Length + bodyOffset;
            frame[at] ^= 0x08;
        }

        return [frame];
    };

    public static FrameTamper Drop(int index) => (i, frame) => i == index ? [] : [frame];

    public static FrameTamper Duplicate(int index) => (i, frame) => i == index ? [frame, (byte[])frame.Clone()] : [frame];

    /// <summary>Delivers frame <paramref name="index"/> + 1 before frame <paramref name="index"/>.</summary>
    public static FrameTamper Swap(int index)
    {
        byte[]? held = null;
        return (i, frame) =>
        {
            if (i == index)
            {
                held = frame;
                return [];
            }

            return i == index + 1 ? [frame, held!] : [frame];
        };
    }

    /// <summary>Delivers frame <paramref name="original"/> a second time right after frame <paramref name="after"/>.</summary>
    public static FrameTamper Replay(int original, int after)
    {
        byte[]? copy = null;
        return (i, frame) =>
        {
            if (i == original)
            {
                copy = (byte[])frame.Clone();
            }

            return i == after ? [frame, copy!] : [frame];
        };
    }

    /// <summary>Cuts <paramref name="bytes"/> off the end of frame <paramref name="index"/>'s body and fixes its length.</summary>
    public static FrameTamper Truncate(int index, int bytes) => (i, frame) =>
    {
        if (i != index)
        {
            return [frame];
        }

        var body = frame.Length - LengthPrefixedFrame.HeaderLength - bytes;
        var cut = frame[..(LengthPrefixedFrame.HeaderLength + body)];
        BinaryPrimitives.WriteUInt16BigEndian(cut, (ushort)body);
        return [cut];
    };

    /// <summary>Passes frame <paramref name="index"/> on as a frame with the given body.</summary>
    public static FrameTamper Replace(int index, byte[] body) => (i, frame) => i == index ? [Frame(body)] : [frame];

    /// <summary>Stops passing anything on from frame <paramref name="index"/>: a peer that stalls.</summary>
    public static FrameTamper HoldFrom(int index) => (i, frame) => i >= index ? [] : [frame];

    public static byte[] Frame(byte[] body)
    {
        var frame = new byte[LengthPrefixedFrame.HeaderLength + body.Length];
        BinaryPrimitives.WriteUInt16BigEndian(frame, (ushort)body.Length);
        body.CopyTo(frame, LengthPrefixedFrame.HeaderLength);
        return frame;
    }
}

/// <summary>Two channel ends connected through a man in the middle (one relay per direction).</summary>
internal sealed class MitmConnection
{
    public MitmConnection(FrameTamper? toResponder = null, FrameTamper? toInitiator = null, PipeOptions? options = null, PipeOptions? responderInput = null, PipeOptions? initiatorOutput = null, Func<int, Task>? toInitiatorGate = null, Func<int, Task>? toResponderGate = null)
    {
        options ??= PipeOptions.Default;
        var initiatorOut = new Pipe(initiatorOutput ?? options);
        var responderIn = new Pipe(responderInput ?? options);
        var responderOut = new Pipe(options);
        var initiatorIn = new Pipe(options);
        Initiator = new ChannelTestKit.DuplexPipe(initiatorIn.Reader, initiatorOut.Writer);
        Responder = new ChannelTestKit.DuplexPipe(responderIn.Reader, responderOut.Writer);
        ToResponder = new FrameRelay(initiatorOut.Reader, responderIn.Writer, toResponder, toResponderGate);
        ToInitiator = new FrameRelay(responderOut.Reader, initiatorIn.Writer, toInitiator, toInitiatorGate);
    }

    public IDuplexPipe Initiator { get; }

    public IDuplexPipe Responder { get; }

    public FrameRelay ToResponder { get; }

    public FrameRelay ToInitiator { get; }

    public (IDuplexPipe Initiator, IDuplexPipe Responder) Ends => (Initiator, Responder);
}
