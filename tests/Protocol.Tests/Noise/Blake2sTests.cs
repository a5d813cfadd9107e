using System.Text.Json;
using SecureChannels.Conformance;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>Tests of the BLAKE2s implementation used as the Noise "BLAKE2s" hash function.</summary>
public sealed class Blake2sTests
{
    // blake2-kat.json entries 64 and 128: the unkeyed hashes of the bytes 0, 1, 2, ... of exactly one and
    // exactly two blocks. Kept here as well so the final-block tests do not depend on the vector folder.
    private const string OneFullBlockDigest = "56f34e8b96557e90c1f24b52d0c89d51086acf1b00f634cf1dde9233b8eaaa3e";
    private const string TwoFullBlocksDigest = "1fa877de67259d19863a2a34bcc6962a2b25fcbf5cbecd7ede8f1fa36688a796";

    [Fact]
    public void EveryKnownAnswerVectorMatches()
    {
        var vectors = LoadBlake2sVectors();
        Assert.NotEmpty(vectors);

        var failures = new List<string>();
        Span<byte> output = stackalloc byte[Blake2s.MaxHashSize];
        foreach (var vector in vectors)
        {
            Blake2s.Initialize(out var state, vector.Out.Length, vector.Key);
            state.Update(vector.In);
            state.Finalize(output);
            if (!output[..vector.Out.Length].SequenceEqual(vector.Out))
            {
                failures.Add(Describe(vector, output[..vector.Out.Length]));
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    [Fact]
    public void KnownAnswerVectorsIncludeKeyedAndUnkeyedEntries()
    {
        // Guards against a vector file (or a filter) that silently drops one half of the set.
        var vectors = LoadBlake2sVectors();
        Assert.Contains(vectors, v => v.Key.Length == 0);
        Assert.Contains(vectors, v => v.Key.Length > 0);
    }

    [Fact]
    public void EveryKnownAnswerVectorMatchesWhenFedOneByteAtATime()
    {
        var vectors = LoadBlake2sVectors();
        Assert.NotEmpty(vectors);

        var failures = new List<string>();
        Span<byte> output = stackalloc byte[Blake2s.MaxHashSize];
        foreach (var vector in vectors)
        {
            Blake2s.Initialize(out var state, vector.Out.Length, vector.Key);
            for (var i = 0; i < vector.In.Length; i++)
            {
                state.Update(vector.In.AsSpan(i, 1));
            }

            state.Finalize(output);
            if (!output[..vector.Out.Length].SequenceEqual(vector.Out))
            {
                failures.Add(Describe(vector, output[..vector.Out.Length]));
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    [Fact]
    public void OneShotHashMatchesRfc7693AppendixB()
    {
        var output = new byte[Blake2s.MaxHashSize];
        Blake2s.Hash("abc"u8, output);
        Assert.Equal("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982", Convert.ToHexStringLower(output));
    }

    [Fact]
    public void Rfc7693SelfTestGrandHashMatches()
    {
        // RFC 7693 Appendix E: hashes of deterministic inputs over several output lengths, input lengths
        // and keys, all folded into one 32-byte hash. The only vectors here with outputs shorter than 32.
        int[] hashSizes = [16, 20, 28, 32];
        int[] inputLengths = [0, 3, 64, 65, 255, 1024];

        Blake2s.Initialize(out var grand);
        var input = new byte[1024];
        var key = new byte[Blake2s.MaxKeySize];
        var digest = new byte[Blake2s.MaxHashSize];
        foreach (var hashSize in hashSizes)
        {
            foreach (var inputLength in inputLengths)
            {
                SelfTestSequence(input.AsSpan(0, inputLength), (uint)inputLength);
                Blake2s.Initialize(out var unkeyed, hashSize);
                unkeyed.Update(input.AsSpan(0, inputLength));
                unkeyed.Finalize(digest);
                grand.Update(digest.AsSpan(0, hashSize));

                SelfTestSequence(key.AsSpan(0, hashSize), (uint)hashSize);
                Blake2s.Initialize(out var keyed, hashSize, key.AsSpan(0, hashSize));
                keyed.Update(input.AsSpan(0, inputLength));
                keyed.Finalize(digest);
                grand.Update(digest.AsSpan(0, hashSize));
            }
        }

        var result = new byte[Blake2s.MaxHashSize];
        grand.Finalize(result);
        Assert.Equal("6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe", Convert.ToHexStringLower(result));
    }

    [Fact]
    public void IncrementalUpdatesSplitAtEveryOffsetMatchOneShot()
    {
        var data = new byte[200];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(i * 7 + 3);
        }

        var expected = new byte[Blake2s.MaxHashSize];
        Blake2s.Hash(data, expected);

        var actual = new byte[Blake2s.MaxHashSize];
        for (var split = 0; split <= data.Length; split++)
        {
            Blake2s.Initialize(out var state);
            state.Update(data.AsSpan(0, split));
            state.Update(data.AsSpan(split));
            state.Finalize(actual);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"split at offset {split} differs from the one-shot hash");
        }
    }

    [Fact]
    public void IncrementalUpdatesInThreeUnevenPiecesMatchOneShot()
    {
        var data = new byte[200];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(i * 13 + 1);
        }

        var expected = new byte[Blake2s.MaxHashSize];
        Blake2s.Hash(data, expected);

        var actual = new byte[Blake2s.MaxHashSize];
        for (var first = 0; first <= data.Length; first += 7)
        {
            for (var second = first; second <= data.Length; second += 11)
            {
                Blake2s.Initialize(out var state);
                state.Update(data.AsSpan(0, first));
                state.Update(data.AsSpan(first, second - first));
                state.Update(data.AsSpan(second));
                state.Finalize(actual);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"pieces split at {first} and {second} differ");
            }
        }
    }

    [Fact]
    public void ExactlyOneBlockIsCompressedAsTheFinalBlock()
    {
        var output = new byte[Blake2s.MaxHashSize];
        Blake2s.Hash(Sequence(64), output);
        Assert.Equal(OneFullBlockDigest, Convert.ToHexStringLower(output));
    }

    [Fact]
    public void ExactlyTwoBlocksCompressTheSecondAsTheFinalBlock()
    {
        var output = new byte[Blake2s.MaxHashSize];
        Blake2s.Hash(Sequence(128), output);
        Assert.Equal(TwoFullBlocksDigest, Convert.ToHexStringLower(output));
    }

    [Fact]
    public void FullBlockDeliveredInBlockSizedUpdatesIsStillTheFinalBlock()
    {
        var data = Sequence(128);
        Blake2s.Initialize(out var state);
        state.Update(data.AsSpan(0, 64));
        state.Update(data.AsSpan(64, 64));
        state.Update([]);
        var output = new byte[Blake2s.MaxHashSize];
        state.Finalize(output);
        Assert.Equal(TwoFullBlocksDigest, Convert.ToHexStringLower(output));
    }

    [Fact]
    public void KeyedHashOfEmptyInputCompressesTheKeyBlockAsTheFinalBlock()
    {
        // blake2-kat.json, first keyed BLAKE2s entry: key 00..1f, empty input.
        Blake2s.Initialize(out var state, key: Sequence(32));
        var output = new byte[Blake2s.MaxHashSize];
        state.Finalize(output);
        Assert.Equal("48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49", Convert.ToHexStringLower(output));
    }

    [Fact]
    public void FinalizeWritesOnlyHashSizeBytes()
    {
        Blake2s.Initialize(out var state, hashSize: 16);
        state.Update("abc"u8);
        var output = new byte[Blake2s.MaxHashSize];
        output.AsSpan().Fill(0xAA);
        state.Finalize(output);
        Assert.All(output[16..], b => Assert.Equal(0xAA, b));
    }

    [Fact]
    public void ShorterHashSizeIsNotATruncationOfTheFullHash()
    {
        // The output length is part of the parameter block, so a 16-byte hash is a different function.
        var full = new byte[Blake2s.MaxHashSize];
        Blake2s.Hash("abc"u8, full);
        Blake2s.Initialize(out var state, hashSize: 16);
        state.Update("abc"u8);
        var shorter = new byte[16];
        state.Finalize(shorter);
        Assert.False(full.AsSpan(0, 16).SequenceEqual(shorter));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(33)]
    [InlineData(int.MaxValue)]
    public void HashSizeOutsideOneToThirtyTwoIsRejected(int hashSize)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Blake2s.Initialize(out _, hashSize));
    }

    [Fact]
    public void KeyLongerThanThirtyTwoBytesIsRejected()
    {
        var key = new byte[Blake2s.MaxKeySize + 1];
        var exception = Assert.Throws<ArgumentException>(() => Blake2s.Initialize(out _, key: key));
        Assert.Equal("key", exception.ParamName);
    }

    [Fact]
    public void KeyOfExactlyThirtyTwoBytesIsAccepted()
    {
        Blake2s.Initialize(out var state, key: new byte[Blake2s.MaxKeySize]);
        state.Finalize(new byte[Blake2s.MaxHashSize]);
    }

    [Fact]
    public void FinalizeIntoTooShortOutputIsRejectedAndLeavesTheStateUsable()
    {
        Blake2s.Initialize(out var state);
        state.Update("abc"u8);
        var exception = Assert.Throws<ArgumentException>(() => state.Finalize(new byte[Blake2s.MaxHashSize - 1]));
        Assert.Equal("output", exception.ParamName);

        var output = new byte[Blake2s.MaxHashSize];
        state.Finalize(output);
        Assert.Equal("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982", Convert.ToHexStringLower(output));
    }

    [Fact]
    public void FinalizeIntoOutputShorterThanAShortHashSizeIsRejected()
    {
        Blake2s.Initialize(out var state, hashSize: 20);
        Assert.Throws<ArgumentException>(() => state.Finalize(new byte[19]));
    }

    [Fact]
    public void OneShotHashIntoTooShortOutputIsRejected()
    {
        var exception = Assert.Throws<ArgumentException>(() => Blake2s.Hash("abc"u8, new byte[Blake2s.MaxHashSize - 1]));
        Assert.Equal("output", exception.ParamName);
    }

    [Fact]
    public void StateCannotBeUsedAfterFinalize()
    {
        Blake2s.Initialize(out var state);
        state.Finalize(new byte[Blake2s.MaxHashSize]);
        Assert.Throws<InvalidOperationException>(() => state.Update("abc"u8));
        Assert.Throws<InvalidOperationException>(() => state.Finalize(new byte[Blake2s.MaxHashSize]));
    }

    [Fact]
    public void UninitializedStateIsRejected()
    {
        var state = default(Blake2s);
        Assert.Throws<InvalidOperationException>(() => state.Update("abc"u8));
    }

    private static byte[] Sequence(int length)
    {
        var data = new byte[length];
        for (var i = 0; i < length; i++)
        {
            data[i] = (byte)i;
        }

        return data;
    }

    // RFC 7693 Appendix E selftest_seq: a Fibonacci-style generator of deterministic test bytes.
    private static void SelfTestSequence(Span<byte> output, uint seed)
    {
        var a = 0xDEAD4BAD * seed;
        uint b = 1;
        for (var i = 0; i < output.Length; i++)
        {
            var t = a + b;
            a = b;
            b = t;
            output[i] = (byte)(t >> 24);
        }
    }

    private static string Describe(KnownAnswer vector, ReadOnlySpan<byte> actual) =>
        $"vector #{vector.Index} (key {vector.Key.Length} bytes, input {vector.In.Length} bytes): "
        + $"expected {Convert.ToHexStringLower(vector.Out)}, got {Convert.ToHexStringLower(actual)}";

    private static List<KnownAnswer> LoadBlake2sVectors()
    {
        var path = Path.Combine(NoiseVectorsFolder.Locate(), "blake2-kat.json");
        using var stream = File.OpenRead(path);
        using var document = JsonDocument.Parse(stream);

        var vectors = new List<KnownAnswer>();
        var index = 0;
        foreach (var entry in document.RootElement.EnumerateArray())
        {
            // Index is the position in the whole file, so a failure can be looked up directly.
            if (entry.GetProperty("hash").GetString() == "blake2s")
            {
                vectors.Add(new KnownAnswer(
                    index,
                    Convert.FromHexString(entry.GetProperty("in").GetString()!),
                    Convert.FromHexString(entry.GetProperty("key").GetString()!),
                    Convert.FromHexString(entry.GetProperty("out").GetString()!)));
            }

            index++;
        }

        return vectors;
    }

    private sealed record KnownAnswer(int Index, byte[] In, byte[] Key, byte[] Out);
}
