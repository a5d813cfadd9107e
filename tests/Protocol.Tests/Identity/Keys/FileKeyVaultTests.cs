using System.Buffers.Binary;
using System.Runtime.Versioning;
using System.Text;
using NSec.Cryptography;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Protocol.Tests.Identity.Keys;

public sealed class FileKeyVaultTests : IDisposable
{
    private const int FileLength = 105;
    private const int HeaderLength = 57;

    private readonly TemporaryDirectory _temp = new();

    // A not-yet-existing subdirectory, so the vault itself creates it.
    private string VaultDirectory => Path.Combine(_temp.Path, "vault");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task CreatedKeySignsAndVerifiesWithNSec()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using var signer = await vault.CreateAsync("agent");
        var message = "identity proof"u8.ToArray();
        var signature = new byte[64];

        await signer.SignAsync(message, signature);

        var publicKey = PublicKey.Import(SignatureAlgorithm.Ed25519, signer.PublicKey.Span, KeyBlobFormat.RawPublicKey);
        Assert.True(SignatureAlgorithm.Ed25519.Verify(publicKey, message, signature));
    }

    [Fact]
    public async Task OpeningFromAFreshVaultInstanceGivesTheSamePublicKey()
    {
        byte[] createdPublicKey;
        await using (var created = await KeyTestSupport.Vault(VaultDirectory).CreateAsync("agent"))
        {
            createdPublicKey = created.PublicKey.ToArray();
        }

        await using var opened = await KeyTestSupport.Vault(VaultDirectory).OpenAsync("agent");
        var signature = new byte[64];
        await opened.SignAsync("m"u8.ToArray(), signature);

        Assert.Equal(createdPublicKey, opened.PublicKey.ToArray());
        var publicKey = PublicKey.Import(SignatureAlgorithm.Ed25519, createdPublicKey, KeyBlobFormat.RawPublicKey);
        Assert.True(SignatureAlgorithm.Ed25519.Verify(publicKey, "m"u8, signature));
    }

    [Fact]
    public async Task OpeningUsesTheCostStoredInTheFileNotTheVaultOptions()
    {
        await using (await KeyTestSupport.Vault(VaultDirectory).CreateAsync("agent"))
        {
        }

        var otherCost = new FileKeyVaultOptions { MemorySizeKib = 16 * 1024, Iterations = 2 };
        var vault = new FileKeyVault(VaultDirectory, KeyTestSupport.Passphrase.AsMemory(), otherCost);
        await using var opened = await vault.OpenAsync("agent");
        Assert.Equal(32, opened.PublicKey.Length);
    }

    [Fact]
    public async Task WrongPassphraseFailsWithWrongPassphrase()
    {
        await using (await KeyTestSupport.Vault(VaultDirectory).CreateAsync("agent"))
        {
        }

        var vault = KeyTestSupport.Vault(VaultDirectory, "correct horse battery stapler");
        Assert.Equal(KeyStoreErrorKind.WrongPassphrase, await KeyTestSupport.KindOfFailureAsync(async () => await vault.OpenAsync("agent")));
    }

    [Fact]
    public async Task PassphraseProviderIsAskedPerKeyName()
    {
        var asked = new List<string>();
        ReadOnlyMemory<char> Provider(string name)
        {
            asked.Add(name);
            return ("passphrase for " + name).AsMemory();
        }

        var vault = new FileKeyVault(VaultDirectory, Provider, KeyTestSupport.LowCost);
        await using (await vault.CreateAsync("alice"))
        {
        }

        await using (await vault.OpenAsync("alice"))
        {
        }

        Assert.Equal(["alice", "alice"], asked);
        var withBobsPassphrase = KeyTestSupport.Vault(VaultDirectory, "passphrase for bob");
        Assert.Equal(KeyStoreErrorKind.WrongPassphrase, await KeyTestSupport.KindOfFailureAsync(async () => await withBobsPassphrase.OpenAsync("alice")));
    }

    [Fact]
    public void EmptyPassphraseIsRejected()
    {
        Assert.Throws<ArgumentException>(() => new FileKeyVault(VaultDirectory, ReadOnlyMemory<char>.Empty, KeyTestSupport.LowCost));
    }

    [Fact]
    public async Task PassphraseWithAnUnpairedSurrogateIsRejectedWithoutQuotingIt()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory, "abc\ud800def");
        var exception = await Assert.ThrowsAsync<InvalidOperationException>(async () => await vault.CreateAsync("agent"));
        Assert.Null(exception.InnerException);
        Assert.DoesNotContain("abc", exception.Message, StringComparison.Ordinal);
        Assert.False(await vault.ExistsAsync("agent"));
    }

    [Fact]
    public async Task FlippingAnyByteGivesWrongPassphraseOrCorruptAndNothingElse()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using (await vault.CreateAsync("agent"))
        {
        }

        var path = vault.GetKeyFilePath("agent");
        var original = await File.ReadAllBytesAsync(path);
        Assert.Equal(FileLength, original.Length);

        var failures = new List<string>();
        foreach (var mask in new byte[] { 0x01, 0x80, 0xFF })
        {
            for (var position = 0; position < original.Length; position++)
            {
                var damaged = (byte[])original.Clone();
                damaged[position] ^= mask;
                await File.WriteAllBytesAsync(path, damaged);

                var outcome = await OutcomeOfOpeningAsync(vault, "agent");
                var expected = ExpectedKindsForFlip(position);
                if (!expected.Contains(outcome))
                {
                    failures.Add($"byte {position} ^ 0x{mask:x2}: {outcome}, expected one of {string.Join(", ", expected)}");
                }
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    [Fact]
    public async Task TruncatingTheFileToAnyLengthGivesCorrupt()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using (await vault.CreateAsync("agent"))
        {
        }

        var path = vault.GetKeyFilePath("agent");
        var original = await File.ReadAllBytesAsync(path);

        var failures = new List<string>();
        for (var length = 0; length < original.Length; length++)
        {
            await File.WriteAllBytesAsync(path, original[..length]);
            var outcome = await OutcomeOfOpeningAsync(vault, "agent");
            if (outcome != KeyStoreErrorKind.Corrupt.ToString())
            {
                failures.Add($"length {length}: {outcome}");
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    [Fact]
    public async Task AppendingToTheFileGivesCorrupt()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using (await vault.CreateAsync("agent"))
        {
        }

        var path = vault.GetKeyFilePath("agent");
        await File.AppendAllTextAsync(path, "x");

        Assert.Equal(KeyStoreErrorKind.Corrupt, await KeyTestSupport.KindOfFailureAsync(async () => await vault.OpenAsync("agent")));
    }

    [Fact]
    public async Task RenamedFileFailsToOpenUnderItsNewName()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using (await vault.CreateAsync("alice"))
        {
        }

        File.Move(vault.GetKeyFilePath("alice"), vault.GetKeyFilePath("bob"));

        Assert.Equal(KeyStoreErrorKind.WrongPassphrase, await KeyTestSupport.KindOfFailureAsync(async () => await vault.OpenAsync("bob")));
        Assert.Equal(KeyStoreErrorKind.NotFound, await KeyTestSupport.KindOfFailureAsync(async () => await vault.OpenAsync("alice")));
    }

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public async Task KeyFileIsMode0600AndCreatedDirectoryIsMode0700()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using (await vault.CreateAsync("agent"))
        {
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(vault.GetKeyFilePath("agent")));
        Assert.Equal(
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
            File.GetUnixFileMode(VaultDirectory));
    }

    [Theory]
    [UnsupportedOSPlatform("windows")]
    [InlineData("644")]
    [InlineData("640")]
    [InlineData("604")]
    [InlineData("620")]
    [InlineData("601")]
    public async Task GroupOrOtherPermissionsGiveInsecurePermissions(string octalMode)
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using (await vault.CreateAsync("agent"))
        {
        }

        File.SetUnixFileMode(vault.GetKeyFilePath("agent"), (UnixFileMode)Convert.ToInt32(octalMode, 8));

        var exception = await Assert.ThrowsAsync<KeyStoreException>(async () => await vault.OpenAsync("agent"));
        Assert.Equal(KeyStoreErrorKind.InsecurePermissions, exception.Kind);
        Assert.Contains("0" + octalMode, exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public async Task OwnerOnlyReadPermissionIsAccepted()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using (await vault.CreateAsync("agent"))
        {
        }

        File.SetUnixFileMode(vault.GetKeyFilePath("agent"), UnixFileMode.UserRead);

        await using var opened = await vault.OpenAsync("agent");
        Assert.Equal(32, opened.PublicKey.Length);
    }

    [Theory]
    [MemberData(nameof(KeyNameData.Invalid), MemberType = typeof(KeyNameData))]
    public async Task InvalidNamesFailWithInvalidNameAndTouchNoFile(string name)
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);

        Assert.Equal(KeyStoreErrorKind.InvalidName, await KeyTestSupport.KindOfFailureAsync(async () => await vault.CreateAsync(name)));
        Assert.Equal(KeyStoreErrorKind.InvalidName, await KeyTestSupport.KindOfFailureAsync(async () => await vault.OpenAsync(name)));
        Assert.Equal(KeyStoreErrorKind.InvalidName, await KeyTestSupport.KindOfFailureAsync(async () => await vault.ExistsAsync(name)));
        Assert.Equal(KeyStoreErrorKind.InvalidName, await KeyTestSupport.KindOfFailureAsync(async () => await vault.DeleteAsync(name)));
        Assert.False(Directory.Exists(VaultDirectory));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_temp.Path));
    }

    [Theory]
    [MemberData(nameof(KeyNameData.Valid), MemberType = typeof(KeyNameData))]
    public async Task ValidNamesRoundTrip(string name)
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using (await vault.CreateAsync(name))
        {
        }

        Assert.True(await vault.ExistsAsync(name));
        Assert.Equal(Path.Combine(VaultDirectory, name + ".key"), vault.GetKeyFilePath(name));
        await using var opened = await vault.OpenAsync(name);
    }

    [Fact]
    public async Task CreatingTheSameNameTwiceFailsWithAlreadyExistsAndKeepsTheFirstKey()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        byte[] firstPublicKey;
        await using (var first = await vault.CreateAsync("agent"))
        {
            firstPublicKey = first.PublicKey.ToArray();
        }

        var before = await File.ReadAllBytesAsync(vault.GetKeyFilePath("agent"));

        Assert.Equal(KeyStoreErrorKind.AlreadyExists, await KeyTestSupport.KindOfFailureAsync(async () => await vault.CreateAsync("agent")));
        Assert.Equal(before, await File.ReadAllBytesAsync(vault.GetKeyFilePath("agent")));
        await using var opened = await vault.OpenAsync("agent");
        Assert.Equal(firstPublicKey, opened.PublicKey.ToArray());
        Assert.Equal(["agent.key"], Directory.EnumerateFiles(VaultDirectory).Select(Path.GetFileName));
    }

    [Fact]
    public async Task ConcurrentCreatesOfOneNameLetExactlyOneWin()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        var attempts = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            try
            {
                var signer = await vault.CreateAsync("agent");
                var publicKey = signer.PublicKey.ToArray();
                await signer.DisposeAsync();
                return (PublicKey: publicKey, Kind: (KeyStoreErrorKind?)null);
            }
            catch (KeyStoreException exception)
            {
                return (PublicKey: (byte[]?)null, Kind: (KeyStoreErrorKind?)exception.Kind);
            }
        })).ToArray();

        var results = await Task.WhenAll(attempts);

        var winner = Assert.Single(results, r => r.PublicKey is not null);
        Assert.All(results.Where(r => r.PublicKey is null), r => Assert.Equal(KeyStoreErrorKind.AlreadyExists, r.Kind));
        await using var opened = await vault.OpenAsync("agent");
        Assert.Equal(winner.PublicKey, opened.PublicKey.ToArray());
        Assert.Equal(["agent.key"], Directory.EnumerateFiles(VaultDirectory).Select(Path.GetFileName));
    }

    [Fact]
    public async Task DeleteRemovesTheFile()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using (await vault.CreateAsync("agent"))
        {
        }

        Assert.True(await vault.ExistsAsync("agent"));

        await vault.DeleteAsync("agent");

        Assert.False(await vault.ExistsAsync("agent"));
        Assert.False(File.Exists(vault.GetKeyFilePath("agent")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(VaultDirectory));
        Assert.Equal(KeyStoreErrorKind.NotFound, await KeyTestSupport.KindOfFailureAsync(async () => await vault.OpenAsync("agent")));
        Assert.Equal(KeyStoreErrorKind.NotFound, await KeyTestSupport.KindOfFailureAsync(async () => await vault.DeleteAsync("agent")));
    }

    [Fact]
    public async Task OperationsOnAMissingDirectoryReportNotFound()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);

        Assert.False(await vault.ExistsAsync("agent"));
        Assert.Equal(KeyStoreErrorKind.NotFound, await KeyTestSupport.KindOfFailureAsync(async () => await vault.OpenAsync("agent")));
        Assert.Equal(KeyStoreErrorKind.NotFound, await KeyTestSupport.KindOfFailureAsync(async () => await vault.DeleteAsync("agent")));
    }

    [Fact]
    public async Task FileFollowsTheDocumentedFormat()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using var signer = await vault.CreateAsync("agent");
        var file = await File.ReadAllBytesAsync(vault.GetKeyFilePath("agent"));

        Assert.Equal(FileLength, file.Length);
        Assert.Equal("SCKV"u8.ToArray(), file[..4]);
        Assert.Equal(1, file[4]);
        Assert.Equal((uint)FileKeyVaultOptions.MinimumMemorySizeKib, BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(5)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(9)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(13)));

        // Decrypt independently, following only the written specification, and check the seed is the signer's key.
        var seed = DecryptSeedPerSpecification(file, "agent", KeyTestSupport.Passphrase);
        using var fromSeed = Key.Import(SignatureAlgorithm.Ed25519, seed, KeyBlobFormat.RawPrivateKey);
        Assert.Equal(fromSeed.PublicKey.Export(KeyBlobFormat.RawPublicKey), signer.PublicKey.ToArray());
    }

    [Fact]
    public async Task SaltAndNonceAreFreshForEveryFile()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using (await vault.CreateAsync("one"))
        {
        }

        await using (await vault.CreateAsync("two"))
        {
        }

        var one = await File.ReadAllBytesAsync(vault.GetKeyFilePath("one"));
        var two = await File.ReadAllBytesAsync(vault.GetKeyFilePath("two"));
        Assert.NotEqual(one[17..33], two[17..33]);
        Assert.NotEqual(one[33..57], two[33..57]);
    }

    [Fact]
    public async Task NoTextContainsThePrivateKeyOrPassphrase()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        await using var signer = await vault.CreateAsync("agent");
        var file = await File.ReadAllBytesAsync(vault.GetKeyFilePath("agent"));
        var seed = DecryptSeedPerSpecification(file, "agent", KeyTestSupport.Passphrase);
        var wrongPassphrase = await Assert.ThrowsAsync<KeyStoreException>(
            async () => await KeyTestSupport.Vault(VaultDirectory, "not the passphrase").OpenAsync("agent"));

        foreach (var text in new[] { signer.ToString()!, vault.ToString(), wrongPassphrase.ToString() })
        {
            Assert.DoesNotContain(Convert.ToHexStringLower(seed), text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(Convert.ToHexStringLower(seed.AsSpan(0, 8)), text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(Convert.ToBase64String(seed), text, StringComparison.Ordinal);
            Assert.DoesNotContain(KeyTestSupport.Passphrase, text, StringComparison.Ordinal);
            Assert.DoesNotContain("not the passphrase", text, StringComparison.Ordinal);
        }

        Assert.Contains(Convert.ToHexStringLower(signer.PublicKey.Span), signer.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CancelledTokenCreatesNothing()
    {
        var vault = KeyTestSupport.Vault(VaultDirectory);
        using var cancellation = new CancellationTokenSource();
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await vault.CreateAsync("agent", cancellation.Token));
        Assert.False(await vault.ExistsAsync("agent"));
    }

    private static string[] ExpectedKindsForFlip(int position) => position switch
    {
        // Magic, version and parallelism are checked structurally.
        < 5 or (>= 13 and < 17) => [nameof(KeyStoreErrorKind.Corrupt)],

        // Memory and passes: out of range is Corrupt; in range, the derived key changes and the AEAD fails.
        < 13 => [nameof(KeyStoreErrorKind.Corrupt), nameof(KeyStoreErrorKind.WrongPassphrase)],

        // Salt, nonce, ciphertext and tag are only checked by the AEAD.
        _ => [nameof(KeyStoreErrorKind.WrongPassphrase)],
    };

    private static async Task<string> OutcomeOfOpeningAsync(FileKeyVault vault, string name)
    {
        try
        {
            await using var signer = await vault.OpenAsync(name);
            return "opened";
        }
        catch (KeyStoreException exception)
        {
            return exception.Kind.ToString();
        }
        catch (Exception exception)
        {
            return exception.GetType().Name;
        }
    }

    private static byte[] DecryptSeedPerSpecification(byte[] file, string name, string passphrase)
    {
        var parameters = new Argon2Parameters
        {
            MemorySize = BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(5)),
            NumberOfPasses = BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(9)),
            DegreeOfParallelism = (int)BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(13)),
        };
        var wrappingKeyBytes = PasswordBasedKeyDerivationAlgorithm.Argon2id(parameters)
            .DeriveBytes(Encoding.UTF8.GetBytes(passphrase), file.AsSpan(17, 16), 32);
        using var wrappingKey = Key.Import(AeadAlgorithm.XChaCha20Poly1305, wrappingKeyBytes, KeyBlobFormat.RawSymmetricKey);
        byte[] associatedData = [.. file[..HeaderLength], .. Encoding.UTF8.GetBytes(name)];
        var seed = new byte[32];
        Assert.True(AeadAlgorithm.XChaCha20Poly1305.Decrypt(wrappingKey, file.AsSpan(33, 24), associatedData, file.AsSpan(HeaderLength), seed));
        return seed;
    }
}
