using NSec.Cryptography;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Protocol.Tests.Identity.Keys;

public sealed class InMemorySignerTests
{
    // RFC 8032 section 7.1, TEST 1 (empty message).
    private const string Rfc8032Seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    private const string Rfc8032PublicKey = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    private const string Rfc8032Signature =
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    [Fact]
    public async Task SignatureVerifiesWithNSecEd25519()
    {
        using var signer = InMemorySigner.Generate();
        var message = "hello, agent"u8.ToArray();
        var signature = new byte[64];

        await signer.SignAsync(message, signature);

        var publicKey = PublicKey.Import(SignatureAlgorithm.Ed25519, signer.PublicKey.Span, KeyBlobFormat.RawPublicKey);
        Assert.True(SignatureAlgorithm.Ed25519.Verify(publicKey, message, signature));
        Assert.False(SignatureAlgorithm.Ed25519.Verify(publicKey, "hello, agenT"u8, signature));
    }

    [Fact]
    public void PublicKeyIs32Bytes()
    {
        using var signer = InMemorySigner.Generate();
        Assert.Equal(32, signer.PublicKey.Length);
    }

    [Fact]
    public async Task ImportedSeedReproducesRfc8032TestVector()
    {
        using var signer = InMemorySigner.FromKey(InMemorySigner.ImportSeed(Convert.FromHexString(Rfc8032Seed)), ownsKey: true);
        var signature = new byte[64];

        await signer.SignAsync(ReadOnlyMemory<byte>.Empty, signature);

        Assert.Equal(Rfc8032PublicKey, Convert.ToHexStringLower(signer.PublicKey.Span));
        Assert.Equal(Rfc8032Signature, Convert.ToHexStringLower(signature));
    }

    [Fact]
    public void ToStringShowsPublicKeyButNoPrivateBytes()
    {
        using var signer = InMemorySigner.FromKey(InMemorySigner.ImportSeed(Convert.FromHexString(Rfc8032Seed)), ownsKey: true);

        var text = signer.ToString();

        Assert.Contains(Rfc8032PublicKey, text, StringComparison.Ordinal);
        Assert.DoesNotContain(Rfc8032Seed, text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Rfc8032Seed[..16], text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task SignatureBufferShorterThan64BytesIsRejected()
    {
        using var signer = InMemorySigner.Generate();
        await Assert.ThrowsAsync<ArgumentException>(async () => await signer.SignAsync(new byte[1], new byte[63]));
    }

    [Fact]
    public async Task LargerSignatureBufferReceivesExactly64Bytes()
    {
        using var signer = InMemorySigner.Generate();
        var buffer = new byte[80];
        Array.Fill(buffer, (byte)0xAA);

        await signer.SignAsync(new byte[] { 1, 2, 3 }, buffer);

        Assert.All(buffer[64..], b => Assert.Equal(0xAA, b));
        var publicKey = PublicKey.Import(SignatureAlgorithm.Ed25519, signer.PublicKey.Span, KeyBlobFormat.RawPublicKey);
        Assert.True(SignatureAlgorithm.Ed25519.Verify(publicKey, new byte[] { 1, 2, 3 }, buffer.AsSpan(0, 64)));
    }

    [Fact]
    public async Task SigningAfterDisposeThrowsObjectDisposed()
    {
        var signer = InMemorySigner.Generate();
        await signer.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await signer.SignAsync(new byte[1], new byte[64]));
    }

    [Fact]
    public void DisposingTwiceIsHarmless()
    {
        var signer = InMemorySigner.Generate();
        signer.Dispose();
        signer.Dispose();
    }

    [Fact]
    public async Task CancelledTokenCancelsSigning()
    {
        using var signer = InMemorySigner.Generate();
        using var cancellation = new CancellationTokenSource();
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await signer.SignAsync(new byte[1], new byte[64], cancellation.Token));
    }

    [Fact]
    public void GeneratedKeysDiffer()
    {
        using var first = InMemorySigner.Generate();
        using var second = InMemorySigner.Generate();
        Assert.False(first.PublicKey.Span.SequenceEqual(second.PublicKey.Span));
    }
}
