using Microsoft.Data.Sqlite;
using SecureChannels.Authority.Storage;
using SQLitePCL;

namespace SecureChannels.Authority.Tests.Storage;

/// <summary>The store contract on SQLite, each test in a database file of its own in a fresh temporary folder.</summary>
public sealed class SqliteAuthorityStoreTests : AuthorityStoreContract
{
    private readonly string _directory = Directory.CreateTempSubdirectory("securechannels-sqlite-").FullName;

    private string DatabasePath => Path.Combine(_directory, "authority.db");

    /// <inheritdoc />
    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    /// <inheritdoc />
    protected override Task<IAuthorityStore> CreateStoreAsync() =>
        Task.FromResult<IAuthorityStore>(new SqliteAuthorityStore(DatabasePath));

    /// <inheritdoc />
    protected override IAuthorityStore CreateUnreachableStore() =>
        new SqliteAuthorityStore(Path.Combine(_directory, "no-such-directory", "authority.db"));

    [Fact]
    public async Task A_directory_in_place_of_the_database_file_is_unavailable()
    {
        var store = Track(new SqliteAuthorityStore(_directory));

        var init = await Assert.ThrowsAsync<AuthorityStoreException>(() => store.InitializeAsync().WaitAsync(Guard));
        Assert.Equal(AuthorityStoreErrorKind.Unavailable, init.Kind);
        var begin = await Assert.ThrowsAsync<AuthorityStoreException>(() => store.BeginAsync(write: true).WaitAsync(Guard));
        Assert.Equal(AuthorityStoreErrorKind.Unavailable, begin.Kind);
    }

    [Fact]
    public async Task The_database_is_in_wal_mode()
    {
        await OpenStoreAsync();

        using var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", command.ExecuteScalar());
    }

    [Fact]
    public async Task A_write_transaction_holds_sqlites_write_lock_from_its_start()
    {
        var store = await OpenStoreAsync();
        using var outsider = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        outsider.Open();

        await using (var tx = await store.BeginAsync(write: true))
        {
            // Nothing written yet, and still another connection (as another process would) cannot start writing.
            Assert.Equal(raw.SQLITE_BUSY, raw.sqlite3_exec(outsider.Handle, "BEGIN IMMEDIATE"));
            await tx.CommitAsync();
        }

        Assert.Equal(raw.SQLITE_OK, raw.sqlite3_exec(outsider.Handle, "BEGIN IMMEDIATE"));
        Assert.Equal(raw.SQLITE_OK, raw.sqlite3_exec(outsider.Handle, "ROLLBACK"));

        // A read transaction is deferred: it leaves the write lock free.
        await using var read = await store.BeginAsync(write: false);
        Assert.Null(await read.LastAuditAsync());
        Assert.Equal(raw.SQLITE_OK, raw.sqlite3_exec(outsider.Handle, "BEGIN IMMEDIATE"));
        Assert.Equal(raw.SQLITE_OK, raw.sqlite3_exec(outsider.Handle, "ROLLBACK"));
    }

    [Fact]
    public async Task Two_store_instances_on_one_file_queue_their_writers_without_busy_errors()
    {
        // A busy timeout this short would fail the writers if they met at SQLite's lock instead of in the queue.
        var first = Track(new SqliteAuthorityStore(DatabasePath, TimeSpan.FromMilliseconds(1)));
        var second = Track(SqliteAuthorityStore.FromConnectionString($"Data Source={DatabasePath}", TimeSpan.FromMilliseconds(1)));
        await first.InitializeAsync();
        await second.InitializeAsync();

        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writers = Enumerable.Range(0, 20).Select(i => Task.Run(async () =>
        {
            await go.Task;
            var store = i % 2 == 0 ? first : second;
            await using var tx = await store.BeginAsync(write: true);
            await tx.AppendAuditAsync(NextAudit(await tx.LastAuditAsync(), $"sc1:writer-{i}"));
            await Task.Yield();
            await tx.CommitAsync();
        })).ToArray();
        go.SetResult();
        await Task.WhenAll(writers).WaitAsync(Guard);

        await AssertAuditChainAsync(first, 20, Enumerable.Range(0, 20).Select(i => $"sc1:writer-{i}"));

        // Held well past every busy timeout (SQLite's and Microsoft.Data.Sqlite's one-second retry): a writer waiting
        // at SQLite's lock would have failed by then, one waiting in the queue simply gets its turn.
        await using var holder = await first.BeginAsync(write: true);
        var waiting = second.BeginAsync(write: true);
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.False(waiting.IsCompleted);
        await holder.CommitAsync();
        await using var next = await waiting.WaitAsync(Guard);
        await next.CommitAsync();
    }

    [Fact]
    public async Task A_writer_of_another_process_past_the_busy_timeout_is_unavailable()
    {
        var store = Track(new SqliteAuthorityStore(DatabasePath, TimeSpan.FromMilliseconds(200)));
        await store.InitializeAsync();
        using var outsider = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        outsider.Open();
        Assert.Equal(raw.SQLITE_OK, raw.sqlite3_exec(outsider.Handle, "BEGIN IMMEDIATE"));

        var e = await Assert.ThrowsAsync<AuthorityStoreException>(() => store.BeginAsync(write: true).WaitAsync(Guard));
        Assert.Equal(AuthorityStoreErrorKind.Unavailable, e.Kind);

        Assert.Equal(raw.SQLITE_OK, raw.sqlite3_exec(outsider.Handle, "ROLLBACK"));
        await WriteAsync(store, tx => tx.InsertTicketAsync(Ticket(1)));
    }

    [Theory]
    [InlineData("")]
    [InlineData(":memory:")]
    public void An_in_memory_database_is_refused(string dataSource)
    {
        Assert.Throws<ArgumentException>(() => SqliteAuthorityStore.FromConnectionString($"Data Source={dataSource};Mode=ReadWriteCreate"));
        Assert.Throws<ArgumentException>(() => SqliteAuthorityStore.FromConnectionString("Data Source=shared;Mode=Memory;Cache=Shared"));
    }
}
