export declare function buildCli(root: string): Promise<void>;
