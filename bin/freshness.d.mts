export declare const builtCli: (root: string) => string;
export declare function cliBuildIsStale(root: string): boolean;
