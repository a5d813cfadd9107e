using System.Buffers;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Tests.Wire;

/// <summary>The 2-byte big-endian length framing, over single- and multi-segment sequences.</summary>
public sealed class LengthPrefixedFrameTests
{
    [Fact]
    public void ExactFrameIsReadAndTheBufferIsLeftEmpty()
    {
        var buffer = new ReadOnlySequence<byte>([0x00, 0x03, 1, 2, 3]);
        Assert.True(LengthPrefixedFrame.TryRead(ref buffer, out var body));
        Assert.Equal([1, 2, 3], body.ToArray());
        Assert.Equal(0, buffer.Length);
    }

    [Fact]
    public void LengthIsBigEndian()
    {
        var bytes = new byte[2 + 0x0102];
        bytes[0] = 0x01;
        bytes[1] = 0x02;
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.True(LengthPrefixedFrame.TryRead(ref buffer, out var body));
        Assert.Equal(0x0102, body.Length);
    }

    [Fact]
    public void EmptyBodyFrameIsRead()
    {
        var buffer = new ReadOnlySequence<byte>([0, 0, 9]);
        Assert.True(LengthPrefixedFrame.TryRead(ref buffer, out var body));
        Assert.Equal(0, body.Length);
        Assert.Equal([9], buffer.ToArray());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void PartialHeaderReadsNothingAndLeavesTheBufferAlone(int length)
    {
        var original = new ReadOnlySequence<byte>(new byte[] { 0x00, 0x05 }.AsMemory(0, length));
        var buffer = original;
        Assert.False(LengthPrefixedFrame.TryRead(ref buffer, out var body));
        Assert.Equal(0, body.Length);
        Assert.Equal(original.Start, buffer.Start);
        Assert.Equal(original.End, buffer.End);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public void PartialBodyReadsNothingAndLeavesTheBufferAlone(int bodyBytesPresent)
    {
        byte[] frame = [0x00, 0x05, 1, 2, 3, 4, 5];
        var original = new ReadOnlySequence<byte>(frame.AsMemory(0, 2 + bodyBytesPresent));
        var buffer = original;
        Assert.False(LengthPrefixedFrame.TryRead(ref buffer, out _));
        Assert.Equal(original.Start, buffer.Start);
        Assert.Equal(original.End, buffer.End);
    }

    [Fact]
    public void TwoFramesBackToBackAreReadInTurn()
    {
        var buffer = new ReadOnlySequence<byte>([0x00, 0x02, 1, 2, 0x00, 0x03, 3, 4, 5, 0x00]);
        Assert.True(LengthPrefixedFrame.TryRead(ref buffer, out var first));
        Assert.Equal([1, 2], first.ToArray());
        Assert.True(LengthPrefixedFrame.TryRead(ref buffer, out var second));
        Assert.Equal([3, 4, 5], second.ToArray());

        // One byte of a third header remains: not a frame yet.
        Assert.False(LengthPrefixedFrame.TryRead(ref buffer, out _));
        Assert.Equal([0x00], buffer.ToArray());
    }

    [Fact]
    public void HeaderSplitAcrossSegmentsIsRead()
    {
        var buffer = Segments([0x00], [0x04, 10, 11], [12, 13]);
        Assert.False(buffer.IsSingleSegment);
        Assert.True(LengthPrefixedFrame.TryRead(ref buffer, out var body));
        Assert.Equal([10, 11, 12, 13], body.ToArray());
        Assert.Equal(0, buffer.Length);
    }

    [Fact]
    public void FramesSpreadOverManyOneByteSegmentsAreRead()
    {
        byte[] stream = [0x00, 0x03, 1, 2, 3, 0x00, 0x01, 4, 0x00, 0x02, 5];
        var buffer = Segments([.. stream.Select(b => new[] { b })]);
        Assert.True(LengthPrefixedFrame.TryRead(ref buffer, out var first));
        Assert.Equal([1, 2, 3], first.ToArray());
        Assert.True(LengthPrefixedFrame.TryRead(ref buffer, out var second));
        Assert.Equal([4], second.ToArray());

        // The third frame's body is one byte short.
        Assert.False(LengthPrefixedFrame.TryRead(ref buffer, out _));
        Assert.Equal([0x00, 0x02, 5], buffer.ToArray());
    }

    [Fact]
    public void PartialBodyOverSegmentsCompletesOnceTheRestArrives()
    {
        var partial = Segments([0x00, 0x04, 1], [2]);
        Assert.False(LengthPrefixedFrame.TryRead(ref partial, out _));
        Assert.Equal(4, partial.Length);

        var complete = Segments([0x00, 0x04, 1], [2], [3, 4, 0xAA]);
        Assert.True(LengthPrefixedFrame.TryRead(ref complete, out var body));
        Assert.Equal([1, 2, 3, 4], body.ToArray());
        Assert.Equal([0xAA], complete.ToArray());
    }

    [Fact]
    public void MaximumLengthFrameIsRead()
    {
        var bytes = new byte[2 + 65535 + 1];
        LengthPrefixedFrame.WriteHeader(bytes, 65535);
        Assert.Equal([0xFF, 0xFF], bytes[..2]);
        bytes[^2] = 0x77;
        var buffer = Segments(bytes[..1000], bytes[1000..40000], bytes[40000..]);
        Assert.True(LengthPrefixedFrame.TryRead(ref buffer, out var body));
        Assert.Equal(65535, body.Length);
        Assert.Equal(0x77, body.Slice(65534).FirstSpan[0]);
        Assert.Equal(1, buffer.Length);
    }

    [Theory]
    [InlineData(0, new byte[] { 0x00, 0x00 })]
    [InlineData(1, new byte[] { 0x00, 0x01 })]
    [InlineData(0x1234, new byte[] { 0x12, 0x34 })]
    [InlineData(65535, new byte[] { 0xFF, 0xFF })]
    public void WriteHeaderWritesTheBigEndianLength(int length, byte[] expected)
    {
        var header = new byte[LengthPrefixedFrame.HeaderLength];
        LengthPrefixedFrame.WriteHeader(header, length);
        Assert.Equal(expected, header);
    }

    [Theory]
    [InlineData(65536)]
    [InlineData(int.MaxValue)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public void WriteHeaderRejectsLengthsOutsideSixteenBits(int length)
    {
        var header = new byte[] { 0xEE, 0xEE };
        Assert.Throws<ArgumentOutOfRangeException>(() => LengthPrefixedFrame.WriteHeader(header, length));
        Assert.Equal([0xEE, 0xEE], header);
    }

    [Fact]
    public void WriteHeaderThenTryReadRoundTrips()
    {
        var body = new byte[300];
        body.AsSpan().Fill(0x42);
        var frame = new byte[LengthPrefixedFrame.HeaderLength + body.Length];
        LengthPrefixedFrame.WriteHeader(frame, body.Length);
        body.CopyTo(frame, LengthPrefixedFrame.HeaderLength);
        var buffer = new ReadOnlySequence<byte>(frame);
        Assert.True(LengthPrefixedFrame.TryRead(ref buffer, out var read));
        Assert.Equal(body, read.ToArray());
    }

    private static ReadOnlySequence<byte> Segments(params byte[][] parts)
    {
        var first = new Segment(parts[0], 0);
        var last = first;
        foreach (var part in parts.Skip(1))
        {
            last = last.Append(part);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
