using NSec.Cryptography;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Protocol.Tests.Identity.Keys;

public sealed class InMemoryKeyStoreTests
{
    [Fact]
    public async Task OpenReturnsTheCreatedKey()
    {
        using var store = new InMemoryKeyStore();
        await using var created = await store.CreateAsync("agent");
        await using var opened = await store.OpenAsync("agent");

        Assert.True(created.PublicKey.Span.SequenceEqual(opened.PublicKey.Span));
        var signature = new byte[64];
        await opened.SignAsync("m"u8.ToArray(), signature);
        var publicKey = PublicKey.Import(SignatureAlgorithm.Ed25519, created.PublicKey.Span, KeyBlobFormat.RawPublicKey);
        Assert.True(SignatureAlgorithm.Ed25519.Verify(publicKey, "m"u8, signature));
    }

    [Fact]
    public async Task CreatingTheSameNameTwiceFailsWithAlreadyExists()
    {
        using var store = new InMemoryKeyStore();
        await using var _ = await store.CreateAsync("agent");

        Assert.Equal(KeyStoreErrorKind.AlreadyExists, await KeyTestSupport.KindOfFailureAsync(async () => await store.CreateAsync("agent")));
    }

    [Fact]
    public async Task OpeningAnUnknownNameFailsWithNotFound()
    {
        using var store = new InMemoryKeyStore();
        Assert.Equal(KeyStoreErrorKind.NotFound, await KeyTestSupport.KindOfFailureAsync(async () => await store.OpenAsync("nobody")));
    }

    [Fact]
    public async Task DeleteRemovesTheKeyAndDisablesItsSigners()
    {
        using var store = new InMemoryKeyStore();
        await using var signer = await store.CreateAsync("agent");

        await store.DeleteAsync("agent");

        Assert.False(await store.ExistsAsync("agent"));
        Assert.Equal(KeyStoreErrorKind.NotFound, await KeyTestSupport.KindOfFailureAsync(async () => await store.OpenAsync("agent")));
        Assert.Equal(KeyStoreErrorKind.NotFound, await KeyTestSupport.KindOfFailureAsync(async () => await store.DeleteAsync("agent")));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await signer.SignAsync(new byte[1], new byte[64]));
    }

    [Fact]
    public async Task DisposingABorrowedSignerKeepsTheKeyInTheStore()
    {
        using var store = new InMemoryKeyStore();
        var created = await store.CreateAsync("agent");
        await created.DisposeAsync();

        await using var opened = await store.OpenAsync("agent");
        await opened.SignAsync(new byte[1], new byte[64]);
    }

    [Theory]
    [MemberData(nameof(KeyNameData.Invalid), MemberType = typeof(KeyNameData))]
    public async Task InvalidNamesFailWithInvalidName(string name)
    {
        using var store = new InMemoryKeyStore();
        Assert.Equal(KeyStoreErrorKind.InvalidName, await KeyTestSupport.KindOfFailureAsync(async () => await store.CreateAsync(name)));
        Assert.Equal(KeyStoreErrorKind.InvalidName, await KeyTestSupport.KindOfFailureAsync(async () => await store.OpenAsync(name)));
        Assert.Equal(KeyStoreErrorKind.InvalidName, await KeyTestSupport.KindOfFailureAsync(async () => await store.ExistsAsync(name)));
        Assert.Equal(KeyStoreErrorKind.InvalidName, await KeyTestSupport.KindOfFailureAsync(async () => await store.DeleteAsync(name)));
    }

    [Fact]
    public async Task ToStringCountsKeysOnly()
    {
        using var store = new InMemoryKeyStore();
        await using var _ = await store.CreateAsync("agent");
        Assert.Equal("InMemoryKeyStore(1 keys)", store.ToString());
    }
}
